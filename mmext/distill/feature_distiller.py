"""``FeatureDistiller``: distil a frozen teacher's FPN features into any mmdet detector.

    model = dict(
        type='FeatureDistiller',
        student=dict(type='RetinaNet', ...),            # any mmdet detector config
        teacher=dict(config='mmdet::swin/mask-rcnn_swin-s-...py',   # or a local .py
                     checkpoint='checkpoints/teacher.pth',
                     train_mode='norm_eval'),  # the authors' (MMRazor's); or 'eval'
        distill=dict(loss=dict(type='PKDLoss', loss_weight=6.0),
                     pairing='index',     # the authors' (neck output i with i); 'stride'
                     levels=[0, 1, 2, 3], # indices (or strides); None: all shared
                     adapter='auto'))     # 1x1 conv where channel counts differ

Every default is the authors' (MMRazor's PKD configs): index pairing, the teacher's
normalisation layers in eval mode and the rest of it in training mode while the
student trains, the unbiased-std PKD loss.

One job per file (docs/pkd.md):

* ``teacher.py``: the teacher's config and checkpoint -> a frozen backbone+neck,
* ``levels.py``: level pairing, channel adapters, the pair log (strides are
  measured by ``mmext.utils.feature_levels``),
* ``input_transform.py``: the teacher's input normalisation,
* ``state_dict_keys.py``: student-only checkpoint key names,
* this file: the module that puts them together and the training step.

The teacher is NOT a registered submodule: it is absent from ``parameters()``
(optimizer, DDP), ``state_dict()`` and ``init_weights()``; ``to()`` / ``cuda()`` /
``half()`` still reach it (``_apply`` is forwarded), and ``train()`` sets its modes
(:func:`~mmext.distill.teacher.set_teacher_mode`).
"""
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import Tensor

from ..utils.feature_levels import measure_levels
from .config_checks import as_config_dict, check_keys
from .input_transform import TeacherInputTransform
from .levels import (LevelPair, build_adapters, describe_pairs, pair_levels,
                     resize_warnings)
from .state_dict_keys import register_key_hooks
from .teacher import (TeacherTrunk, build_teacher, check_teacher_cfg,
                      set_teacher_mode)

DISTILL_KEYS = ('loss', 'pairing', 'levels', 'adapter')
DEFAULT_LOSS = dict(type='PKDLoss', loss_weight=1.0)
DEFAULT_PAIRING = 'index'  # the authors' (MMRazor's data_idx 0..3)


@MODELS.register_module()
class FeatureDistiller(BaseDetector):
    """A student detector trained with feature distillation from a frozen teacher.

    Args:
        student: config of any mmdet detector (the model that is trained, tested
            and saved).
        teacher: ``dict(config=<local .py | 'mmdet::...py' | model dict>,
            checkpoint=<path>, checkpoint_url=<optional, shown when missing>,
            train_mode=<'norm_eval' (default, the authors') | 'eval'>)``.
            ``train_mode``: the teacher's modes while the student trains:
            'norm_eval' puts its normalisation layers in eval mode and keeps
            dropout / drop-path active, as MMRazor's ``teacher_norm_eval=True``;
            'eval' puts every module in eval mode (deterministic targets).
            ``checkpoint=None`` is refused unless ``random_init=True`` (tests and
            model building only: the teacher would be untrained).
        distill: ``loss`` (default ``PKDLoss``, weight 1; the loss resizes the
            student map to the teacher's when their sizes differ), ``pairing``
            ('index': neck output i with i, the authors' and the default;
            'stride': equal strides), ``levels`` (indices for index pairing, strides for
            stride pairing; ``None``: every index both necks have / every shared
            stride), ``adapter`` ('auto': 1x1 conv where channel counts differ;
            True: always; False: never, a channel mismatch is an error). Any other
            key is an error.
        data_preprocessor: defaults to the student's.
    """

    def __init__(self,
                 student: dict,
                 teacher: dict,
                 distill: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        student, teacher = as_config_dict(student), as_config_dict(teacher)
        distill = as_config_dict(distill or {})
        check_keys('distill', distill, DISTILL_KEYS)  # fail fast, before any build
        check_teacher_cfg(teacher)

        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        if isinstance(data_preprocessor, dict):  # mmdet's registry, whatever the scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(student)

        trunk, teacher_pre = build_teacher(teacher)
        trunk.input_transform = TeacherInputTransform(self.data_preprocessor, teacher_pre)
        object.__setattr__(self, '_teacher', trunk)  # not a submodule (module doc)
        self.teacher_train_mode: str = teacher.get('train_mode', 'norm_eval')

        self.distill_loss = MODELS.build(distill.get('loss', DEFAULT_LOSS))
        self.pairing = distill.get('pairing', DEFAULT_PAIRING)
        self.student_levels = measure_levels(self.student.extract_feat, self.student)
        self.teacher_levels = measure_levels(trunk, trunk)
        self.level_pairs: List[LevelPair] = pair_levels(
            self.student_levels, self.teacher_levels, self.pairing,
            distill.get('levels'))
        self.adapters = build_adapters(self.student_levels, self.teacher_levels,
                                       self.level_pairs, distill.get('adapter', 'auto'))
        self.log_pairs()

        register_key_hooks(self)

    def log_pairs(self) -> None:
        """Log (mmengine's current logger) what is distilled: one INFO message
        with a line per level pair (indices, strides, channels, resize, adapter;
        ``levels.describe_pairs``) and one WARNING per pair whose maps differ in
        size by more than 2x (``levels.resize_warnings``). Called once, at build."""
        lines = describe_pairs(self.student_levels, self.teacher_levels,
                               self.level_pairs, set(self.adapters),
                               getattr(self.distill_loss, 'resize', None))
        pairs = f"{len(lines)} level pair{'s' if len(lines) != 1 else ''}"
        print_log(f'FeatureDistiller: {pairs} (pairing={self.pairing!r}), student -> '
                  'teacher:\n  ' + '\n  '.join(lines), logger='current',
                  level=logging.INFO)
        for warning in resize_warnings(self.student_levels, self.teacher_levels,
                                       self.level_pairs):
            print_log(f'FeatureDistiller: {warning}', logger='current',
                      level=logging.WARNING)

    # --------------------------------------------------------------- modules
    @property
    def teacher(self) -> TeacherTrunk:
        """The frozen teacher backbone + neck."""
        return self._teacher

    def _apply(self, fn, *args, **kwargs):
        # Private, no public form: to() / cuda() / half() / float() all end in
        # nn.Module._apply, and torch offers no hook to reach a non-submodule.
        super()._apply(fn, *args, **kwargs)
        self._teacher._apply(fn, *args, **kwargs)  # to()/cuda()/half() reach it
        return self

    def train(self, mode: bool = True) -> 'FeatureDistiller':
        super().train(mode)
        # not a submodule: nn.Module.train does not reach it
        set_teacher_mode(self._teacher, mode, self.teacher_train_mode)
        return self

    # ---------------------------------------------------------------- forward
    def teacher_inputs(self, inputs: Tensor) -> Tensor:
        """The student's preprocessed batch, normalised as the teacher expects."""
        return self._teacher.input_transform(inputs)

    @torch.no_grad()
    def teacher_features(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Teacher neck maps of the student's preprocessed batch (no_grad; the
        teacher's modes are the ones ``train()`` set)."""
        return self._teacher(self.teacher_inputs(inputs))

    def distill_losses(self, feats_s: Sequence[Tensor],
                       feats_t: Sequence[Tensor]) -> Dict[str, Tensor]:
        """``{<loss name>_<pair name>: loss}``, one term per level pair."""
        prefix = getattr(self.distill_loss, 'loss_name', 'loss_distill')
        losses = {}
        for name, i_s, i_t in self.level_pairs:
            feat_s = feats_s[i_s]
            if name in self.adapters:
                feat_s = self.adapters[name](feat_s)
            losses[f'{prefix}_{name}'] = self.distill_loss(feat_s, feats_t[i_t])
        return losses

    def loss(self, batch_inputs: Tensor, batch_data_samples) -> dict:
        """The student's own losses plus one distillation term per level."""
        captured: List = []
        trunk_end = getattr(self.student, 'neck', None) or self.student.backbone

        def capture(module, args, output):
            if not captured:  # the first trunk output of this step
                captured.append(output)

        # The hook takes the student's neck output from its own loss(), so the
        # student trunk runs once per step.
        handle = trunk_end.register_forward_hook(capture)
        try:
            losses = self.student.loss(batch_inputs, batch_data_samples)
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError('FeatureDistiller: the student loss did not run its '
                               'backbone/neck')
        feats_s = captured[0]
        feats_s = (feats_s, ) if isinstance(feats_s, Tensor) else tuple(feats_s)
        losses.update(self.distill_losses(feats_s, self.teacher_features(batch_inputs)))
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples, rescale: bool = True):
        return self.student.predict(batch_inputs, batch_data_samples, rescale=rescale)

    def _forward(self, batch_inputs: Tensor, batch_data_samples=None):
        return self.student(batch_inputs, batch_data_samples, mode='tensor')

    def extract_feat(self, batch_inputs: Tensor):
        return self.student.extract_feat(batch_inputs)
