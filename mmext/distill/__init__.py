"""PKD feature distillation for mmdet detectors (see docs/pkd.md).

``PKDLoss`` and ``FeatureDistiller`` are registered in mmdet's MODELS.
"""
from .feature_distiller import FeatureDistiller, TeacherTrunk
from .pkd_loss import PKDLoss, standardize_per_channel

__all__ = ['FeatureDistiller', 'TeacherTrunk', 'PKDLoss', 'standardize_per_channel']
