"""What every feature-imitation loss shares: the size rule and the sum over levels.

A subclass (``PKDLoss``, ``FeatureMSELoss``) only says how ONE pair of maps is
compared (``pair_loss``); this base checks the pair, brings both maps to one size
(the same rule for every loss, so that variants differ only in the comparison),
turns autocast off, sums over levels and applies ``loss_weight``.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
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


class FeatureImitationLoss(nn.Module):
    """Base of the distillation losses: ``loss_weight * sum_levels pair_loss(S, T)``.

    Args:
        loss_weight: multiplies the loss.
        resize: which side is resized (bilinear) when the spatial sizes differ:
            ``'student'`` (to the teacher's size; MMRazor's default) or
            ``'teacher'`` (to the student's size).
    """

    #: prefix of the distiller's loss keys (``<loss_name>_<level>``)
    loss_name = 'loss_distill'

    def __init__(self, loss_weight: float = 1.0, resize: str = 'student') -> None:
        super().__init__()
        if resize not in RESIZE_SIDES:
            raise ValueError(f"{type(self).__name__}: resize must be 'student' or "
                             f"'teacher', got {resize!r}")
        self.loss_weight = float(loss_weight)
        self.resize = resize

    def pair_loss(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Unweighted loss of two (N, C, H, W) float32 maps of one size."""
        raise NotImplementedError

    def single(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Unweighted loss of one pair of (N, C, H, W) maps (teacher detached)."""
        if feat_s.dim() != 4 or feat_t.dim() != 4:
            raise ValueError(
                f'{type(self).__name__} expects (N, C, H, W) feature maps, got '
                f'shapes {tuple(feat_s.shape)} and {tuple(feat_t.shape)}')
        if feat_s.shape[:2] != feat_t.shape[:2]:
            raise ValueError(
                f'{type(self).__name__}: student and teacher maps must have the '
                f'same batch size and channel count, got {tuple(feat_s.shape)} and '
                f'{tuple(feat_t.shape)} (use a channel adapter for different '
                'channel counts)')
        feat_t = feat_t.detach()  # the teacher never gets gradients
        # Statistics in float32 whatever AMP does to the inputs.
        with torch.autocast(device_type=feat_s.device.type, enabled=False):
            feat_s, feat_t = match_size(feat_s, feat_t, self.resize)
            return self.pair_loss(feat_s.float(), feat_t.float())

    def forward(self, preds_s: Feats, preds_t: Feats) -> Tensor:
        """Weighted loss, summed over levels when tuples of maps are given."""
        if isinstance(preds_s, Tensor):
            preds_s, preds_t = (preds_s, ), (preds_t, )
        if len(preds_s) != len(preds_t):
            raise ValueError(f'{type(self).__name__}: {len(preds_s)} student maps '
                             f'but {len(preds_t)} teacher maps')
        total = sum(self.single(s, t) for s, t in zip(preds_s, preds_t))
        return self.loss_weight * total
