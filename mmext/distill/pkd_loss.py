"""PKD loss: Pearson-correlation feature distillation (Cao et al., NeurIPS 2022).

Each feature map (N, C, H, W) is standardised per channel, with mean and standard
deviation taken over the M = N x H x W values of the channel; the loss is the mean
squared error between the standardised student and teacher maps, divided by 2, times
``loss_weight``. This is MMRazor's ``PKDLoss`` exactly (``mmrazor/models/losses/
pkd_loss.py``: ``(feat - mean) / (feat.std() + 1e-6)``, ``feat.std()`` unbiased).

With the unbiased std a channel's term is ``(M - 1) / M * (1 - r)`` (r: Pearson
correlation of the student and teacher values of that channel over N x H x W) up to
``eps``; with ``unbiased=False`` (population std) it is exactly ``1 - r``. Either
way it is invariant to a positive per-channel scale and to a per-channel shift.

Numerics: statistics are computed in float32 with autocast off (inputs may be
float16 / bfloat16 under AMP). A constant or all-zero channel has std 0 and
standardises to exactly 0 (its term is ``mean(T'^2) / 2``); its gradient is finite
(the backward of ``sqrt`` is masked at 0, as in ``torch.std``). A channel with a
single value (M = 1) has no unbiased std (MMRazor: NaN); it is taken as 0 here.
"""
import torch
from mmdet.registry import MODELS
from torch import Tensor

from .feature_loss import FeatureImitationLoss


def _masked_sqrt(var: Tensor) -> Tensor:
    """sqrt with a zero (not infinite) gradient where ``var == 0``."""
    positive = var > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, var, 1.0)), 0.0)


def standardize_per_channel(feat: Tensor, eps: float = 1e-6,
                            unbiased: bool = True) -> Tensor:
    """(N, C, H, W) -> (C, N*H*W), each row ``(x - mean) / (std + eps)``; float32.

    ``unbiased``: divide the sum of squares by M - 1 (MMRazor's ``feat.std()``)
    or by M (population std). M = 1 gives std 0.
    """
    if feat.dim() != 4:
        raise ValueError(f'PKDLoss expects (N, C, H, W) feature maps, got shape '
                         f'{tuple(feat.shape)}')
    num_channels = feat.shape[1]
    rows = feat.float().transpose(0, 1).reshape(num_channels, -1)
    centred = rows - rows.mean(dim=1, keepdim=True)
    count = rows.shape[1]
    divisor = max(count - 1, 1) if unbiased else count
    var = centred.pow(2).sum(dim=1, keepdim=True) / divisor
    return centred / (_masked_sqrt(var) + eps)


@MODELS.register_module()
class PKDLoss(FeatureImitationLoss):
    """Pearson-correlation distillation loss between student and teacher features.

    Args:
        loss_weight: multiplies the loss (the paper uses 6 or 10 per FPN level).
        resize: which side is resized (bilinear) when the spatial sizes differ:
            ``'student'`` (to the teacher's size; MMRazor's default) or
            ``'teacher'`` (to the student's size).
        eps: added to the standard deviation (MMRazor: 1e-6).
        unbiased: unbiased std as MMRazor (default) or the population std
            (``False``: a channel's term is exactly ``1 - r``).
    """

    loss_name = 'loss_pkd'

    def __init__(self, loss_weight: float = 1.0, resize: str = 'student',
                 eps: float = 1e-6, unbiased: bool = True) -> None:
        super().__init__(loss_weight, resize)
        self.eps = eps
        self.unbiased = unbiased

    def pair_loss(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """MSE of the standardised (C, N*H*W) maps, halved."""
        norm_s = standardize_per_channel(feat_s, self.eps, self.unbiased)
        norm_t = standardize_per_channel(feat_t, self.eps, self.unbiased)
        return (norm_s - norm_t).pow(2).mean() / 2
