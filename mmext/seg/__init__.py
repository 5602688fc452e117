"""mmext.seg: LaU (Location-aware Upsampling) for MMSegmentation.

Registered in mmseg's MODELS: ``LaUOffsetBranch`` (the authors' offset branch),
``LaUHead`` (a wrapper putting LaU on top of any decode head that classifies with
``conv_seg``), ``LaUOffsetGuidedLoss`` (Eq. 3) and ``LaURegressionLoss`` (Eq. 4). See
docs/lau_seg.md.
"""
from .classifier_input import ClassifierCall, capture_classifier
from .errors import LaUConfigError
from .lau_head import (REFUSED_HEADS, LaUContext, LaUHead, base_offsets,
                       split_head_forward)
from .losses import (LaUOffsetGuidedLoss, LaURegressionLoss, offset_guided_loss,
                     regression_loss, regression_targets)
from .multi_eval_tta import EncodingMultiEvalTTA
from .offset_branch import LaUOffsetBranch

__all__ = [
    'ClassifierCall', 'EncodingMultiEvalTTA', 'LaUConfigError', 'LaUContext', 'LaUHead',
    'LaUOffsetBranch', 'LaUOffsetGuidedLoss', 'LaURegressionLoss', 'REFUSED_HEADS',
    'base_offsets', 'capture_classifier', 'offset_guided_loss', 'regression_loss',
    'regression_targets', 'split_head_forward',
]
