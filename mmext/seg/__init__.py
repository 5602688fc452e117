"""mmext.seg: LaU (Location-aware Upsampling) for MMSegmentation.

Registered in mmseg's MODELS: ``LaUOffsetBranch``, ``LaUHead`` (LaU on top of any
decode head), ``LaUSepASPPHead`` (DeepLabV3+ with a LaU decoder upsampler),
``LaUOffsetGuidedLoss`` (Eq. 3) and ``LaURegressionLoss`` (Eq. 4). See docs/lau_seg.md.
"""
from .errors import LaUConfigError
from .lau_head import (LaUContext, LaUHead, LaUMixin, LaUSepASPPHead, base_offsets,
                       lau_head_class)
from .losses import (LaUOffsetGuidedLoss, LaURegressionLoss, offset_guided_loss,
                     regression_loss, regression_targets)
from .offset_branch import LaUOffsetBranch

__all__ = [
    'LaUConfigError', 'LaUContext', 'LaUHead', 'LaUMixin', 'LaUOffsetBranch',
    'LaUOffsetGuidedLoss', 'LaURegressionLoss', 'LaUSepASPPHead', 'base_offsets',
    'lau_head_class', 'offset_guided_loss', 'regression_loss', 'regression_targets',
]
