"""Plain MSE feature imitation (FitNets-style), the baseline PKD is compared with.

The paper's argument for PKD is that MSE between raw FPN maps of *heterogeneous*
detectors is dominated by the levels and channels of large magnitude; this loss is
that MSE, with PKDLoss's pairing and resize rule, so that the two differ only in the
normalisation (tools/benchmarks/bench_pkd.py, variant ``mse``).
"""
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .feature_loss import FeatureImitationLoss


@MODELS.register_module()
class FeatureMSELoss(FeatureImitationLoss):
    """``loss_weight * mean((S - T)^2)`` per level, summed over levels.

    Args:
        loss_weight: multiplies the loss.
        resize: which side is resized bilinearly when the spatial sizes differ
            (``'student'``: to the teacher's size, as PKDLoss does).
    """

    loss_name = 'loss_mse'

    def pair_loss(self, feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Mean squared difference of the raw maps."""
        return F.mse_loss(feat_s, feat_t)
