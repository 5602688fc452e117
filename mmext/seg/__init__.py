"""mmext.seg: LaU (Location-aware Upsampling) for MMSegmentation.

Registered in mmseg's MODELS: ``LaUOffsetBranch`` (the authors' offset branch),
``LaUHead`` (a wrapper putting LaU on top of any decode head), ``LaUOffsetGuidedLoss``
(Eq. 3) and ``LaURegressionLoss`` (Eq. 4). See docs/lau_seg.md.
"""
from .errors import LaUConfigError
from .lau_head import (FEATURE_FUNCTIONS, LaUContext, LaUHead, base_offsets,
                       split_head_forward)
from .losses import (LaUOffsetGuidedLoss, LaURegressionLoss, offset_guided_loss,
                     regression_loss, regression_targets)
from .multi_eval_tta import EncodingMultiEvalTTA
from .offset_branch import LaUOffsetBranch

__all__ = [
    'EncodingMultiEvalTTA',
    'FEATURE_FUNCTIONS', 'LaUConfigError', 'LaUContext', 'LaUHead', 'LaUOffsetBranch',
    'LaUOffsetGuidedLoss', 'LaURegressionLoss', 'base_offsets', 'offset_guided_loss',
    'regression_loss', 'regression_targets', 'split_head_forward',
]
