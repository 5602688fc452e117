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
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

Feats = Union[Tensor, Sequence[Tensor]]
RESIZE_SIDES = ('student', 'teacher')


def match_size(feat_s: Tensor, feat_t: Tensor, resize: str = 'student'
               ) -> Tuple[Tensor, Tensor]:
    """Bring (N, C, Hs, Ws) and (N, C, Ht, Wt) to one spatial size, bilinearly.

    ``resize='student'`` (MMRazor's ``resize_stu=True``, the default of its PKDLoss,
    which the authors' configs keep) resizes the student map to the teacher's size;
    ``'teacher'`` the other way. ``align_corners=False`` as in MMRazor's
    ``F.interpolate(..., mode='bilinear')``. Resized maps are float32.
    """
    if feat_s.shape[-2:] == feat_t.shape[-2:]:
        return feat_s, feat_t
    if resize == 'student':
        feat_s = F.interpolate(feat_s.float(), size=feat_t.shape[-2:],
                               mode='bilinear', align_corners=False)
    else:
        feat_t = F.interpolate(feat_t.float(), size=feat_s.shape[-2:],
                               mode='bilinear', align_corners=False)
    return feat_s, feat_t


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
class PKDLoss(nn.Module):
    """Pearson-correlation distillation loss between student and teacher features.

    Args:
        loss_weight: multiplies the loss (the paper uses 6 or 10 per FPN level).
        resize: which side is resized (bilinear) when the spatial sizes differ:
            ``'student'`` (to the teacher's size; MMRazor's default) or
            ``'teacher'`` (to the student's size).
        eps: floor of the standard deviation (``sqrt(var + eps**2)``).
    """

    def __init__(self, loss_weight: float = 1.0, resize: str = 'student',
                 eps: float = 1e-6) -> None:
        super().__init__()
        if resize not in RESIZE_SIDES:
            raise ValueError(f"PKDLoss: resize must be 'student' or 'teacher', "
                             f'got {resize!r}')
        self.loss_weight = float(loss_weight)
        self.resize = resize
        self.eps = eps

    @property
    def loss_name(self) -> str:
        """Prefix of the distiller's loss keys (``loss_pkd_<level>``)."""
        return 'loss_pkd'

    def single(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Unweighted loss of one pair of maps: mean over channels of (1 - r)."""
        if feat_s.shape[:2] != feat_t.shape[:2]:
            raise ValueError(
                'PKDLoss: student and teacher maps must have the same batch size '
                f'and channel count, got {tuple(feat_s.shape)} and '
                f'{tuple(feat_t.shape)} (use a channel adapter for different '
                'channel counts)')
        feat_t = feat_t.detach()  # the teacher never gets gradients
        with torch.autocast(device_type=feat_s.device.type, enabled=False):
            feat_s, feat_t = match_size(feat_s, feat_t, self.resize)
            norm_s = standardize_per_channel(feat_s, self.eps)
            norm_t = standardize_per_channel(feat_t, self.eps)
            return F.mse_loss(norm_s, norm_t) / 2

    def forward(self, preds_s: Feats, preds_t: Feats) -> Tensor:
        """Weighted loss, summed over levels when tuples of maps are given."""
        if isinstance(preds_s, Tensor):
            preds_s, preds_t = (preds_s, ), (preds_t, )
        if len(preds_s) != len(preds_t):
            raise ValueError(f'PKDLoss: {len(preds_s)} student maps but '
                             f'{len(preds_t)} teacher maps')
        total = sum(self.single(s, t) for s, t in zip(preds_s, preds_t))
        return self.loss_weight * total
