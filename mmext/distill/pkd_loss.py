"""PKD loss: Pearson-correlation feature distillation (Cao et al., NeurIPS 2022).

Each feature map (N, C, H, W) is standardised per channel, with mean and variance
taken over N x H x W together; the loss is the mean squared error between the
standardised student and teacher maps, divided by 2, times ``loss_weight``.

With the population variance (what we use) a channel's term is exactly
``1 - r`` (r: Pearson correlation of the student and teacher values of that
channel over N x H x W), so the loss of one level is
``loss_weight * mean_c(1 - r_c)`` up to ``eps``. It is invariant to a positive
per-channel scale and to a per-channel shift of either input.

Numerics: statistics are computed in float32 with autocast off (inputs may be
float16 / bfloat16 under AMP), and the standard deviation is
``sqrt(var + eps**2)`` (about ``std + eps`` as in MMRazor, but with a finite
gradient at zero variance), so constant or all-zero channels give finite values and
finite gradients (a constant channel standardises to ~0, i.e. its term is ~1/2).
"""
import torch
from mmdet.registry import MODELS
from torch import Tensor

from .feature_loss import FeatureImitationLoss


def standardize_per_channel(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """(N, C, H, W) -> (C, N*H*W), each row with zero mean and unit variance.

    Population variance (divide by N*H*W), std = sqrt(var + eps**2); float32.
    """
    if feat.dim() != 4:
        raise ValueError(f'PKDLoss expects (N, C, H, W) feature maps, got shape '
                         f'{tuple(feat.shape)}')
    num_channels = feat.shape[1]
    rows = feat.float().transpose(0, 1).reshape(num_channels, -1)
    mean = rows.mean(dim=1, keepdim=True)
    centred = rows - mean
    var = centred.pow(2).mean(dim=1, keepdim=True)
    return centred * torch.rsqrt(var + eps * eps)


@MODELS.register_module()
class PKDLoss(FeatureImitationLoss):
    """Pearson-correlation distillation loss between student and teacher features.

    Args:
        loss_weight: multiplies the loss (the paper uses 6 or 10 per FPN level).
        resize: which side is resized (bilinear) when the spatial sizes differ:
            ``'student'`` (to the teacher's size; MMRazor's default) or
            ``'teacher'`` (to the student's size).
        eps: floor of the standard deviation (``sqrt(var + eps**2)``).
    """

    loss_name = 'loss_pkd'

    def __init__(self, loss_weight: float = 1.0, resize: str = 'student',
                 eps: float = 1e-6) -> None:
        super().__init__(loss_weight, resize)
        self.eps = eps

    def pair_loss(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Mean over channels of (1 - r): MSE of the standardised maps, halved."""
        norm_s = standardize_per_channel(feat_s, self.eps)
        norm_t = standardize_per_channel(feat_t, self.eps)
        return (norm_s - norm_t).pow(2).mean() / 2
