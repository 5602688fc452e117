"""Plain MSE feature imitation (FitNets-style), the baseline PKD is compared with.

The paper's argument for PKD is that MSE between raw FPN maps of *heterogeneous*
detectors is dominated by the levels and channels of large magnitude; this loss is
that MSE, with PKDLoss's pairing and resize rule, so that the two differ only in the
normalisation (tools/benchmarks/bench_pkd.py, variant ``mse``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .pkd_loss import RESIZE_SIDES, Feats, match_size


@MODELS.register_module()
class FeatureMSELoss(nn.Module):
    """``loss_weight * mean((S - T)^2)`` per level, summed over levels.

    Args:
        loss_weight: multiplies the loss.
        resize: which side is resized bilinearly when the spatial sizes differ
            (``'student'``: to the teacher's size, as PKDLoss does).
    """

    def __init__(self, loss_weight: float = 1.0, resize: str = 'student') -> None:
        super().__init__()
        if resize not in RESIZE_SIDES:
            raise ValueError(f"FeatureMSELoss: resize must be 'student' or 'teacher', "
                             f'got {resize!r}')
        self.loss_weight = float(loss_weight)
        self.resize = resize

    @property
    def loss_name(self) -> str:
        """Prefix of the distiller's loss keys (``loss_mse_<level>``)."""
        return 'loss_mse'

    def single(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Unweighted MSE of one pair of (N, C, H, W) maps (teacher detached)."""
        if feat_s.dim() != 4 or feat_s.shape[:2] != feat_t.shape[:2]:
            raise ValueError(
                'FeatureMSELoss: student and teacher maps must be (N, C, H, W) with '
                f'the same N and C, got {tuple(feat_s.shape)} and '
                f'{tuple(feat_t.shape)} (use a channel adapter for different '
                'channel counts)')
        with torch.autocast(device_type=feat_s.device.type, enabled=False):
            feat_s, feat_t = match_size(feat_s, feat_t.detach(), self.resize)
            return F.mse_loss(feat_s.float(), feat_t.float())

    def forward(self, preds_s: Feats, preds_t: Feats) -> Tensor:
        """Weighted loss, summed over levels when tuples of maps are given."""
        if isinstance(preds_s, Tensor):
            preds_s, preds_t = (preds_s, ), (preds_t, )
        if len(preds_s) != len(preds_t):
            raise ValueError(f'FeatureMSELoss: {len(preds_s)} student maps but '
                             f'{len(preds_t)} teacher maps')
        total = sum(self.single(s, t) for s, t in zip(preds_s, preds_t))
        return self.loss_weight * total
