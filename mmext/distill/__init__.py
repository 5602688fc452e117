"""PKD feature distillation for mmdet detectors (see docs/pkd.md).

``PKDLoss``, ``FeatureMSELoss`` and ``FeatureDistiller`` are registered in mmdet's
MODELS,
``TeacherEvalValLoop`` (the teacher's metrics in the validation log) in its LOOPS.
"""
from ..utils.feature_levels import measure_levels
from .feature_distiller import FeatureDistiller
from .feature_loss import FeatureImitationLoss, match_size
from .levels import LevelPair, describe_pairs, pair_levels, resize_warnings
from .mse_loss import FeatureMSELoss
from .pkd_loss import PKDLoss, standardize_per_channel
from .teacher import TeacherTrunk, build_teacher, load_teacher_model_config
from .teacher_val_loop import TeacherEvalValLoop

__all__ = ['FeatureDistiller', 'TeacherTrunk', 'PKDLoss', 'FeatureMSELoss',
           'FeatureImitationLoss',
           'standardize_per_channel', 'match_size', 'LevelPair', 'measure_levels',
           'pair_levels', 'describe_pairs', 'resize_warnings', 'build_teacher',
           'load_teacher_model_config',
           'TeacherEvalValLoop']
