"""PKD feature distillation for mmdet detectors (see docs/pkd.md).

``PKDLoss``, ``FeatureMSELoss`` and ``FeatureDistiller`` are registered in mmdet's
MODELS,
``TeacherEvalValLoop`` (the teacher's metrics in the validation log) in its LOOPS.
"""
from .feature_distiller import FeatureDistiller
from .feature_loss import FeatureImitationLoss, match_size
from .levels import LevelPair, measure_levels, pair_levels
from .mse_loss import FeatureMSELoss
from .pkd_loss import PKDLoss, standardize_per_channel
from .teacher import TeacherTrunk, build_teacher, load_teacher_model_config
from .teacher_val_loop import TeacherEvalValLoop

__all__ = ['FeatureDistiller', 'TeacherTrunk', 'PKDLoss', 'FeatureMSELoss',
           'FeatureImitationLoss',
           'standardize_per_channel', 'match_size', 'LevelPair', 'measure_levels',
           'pair_levels', 'build_teacher', 'load_teacher_model_config',
           'TeacherEvalValLoop']
