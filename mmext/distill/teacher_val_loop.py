"""``TeacherEvalValLoop``: validate the student, and show the teacher's metrics beside.

    val_cfg = dict(type='TeacherEvalValLoop')   # model.type='FeatureDistiller'

The student is validated as by mmengine's ``ValLoop``. The whole teacher detector
(``model.teacher``'s config and checkpoint, heads included) is built and loaded
strictly when the loop is built (before the first training iteration, so a
checkpoint without head weights fails at once), evaluated at the first validation
with its own data preprocessor on the same dataloader, through its own evaluator
(a copy of ``val_evaluator``), then freed. Its metrics, prefixed ``teacher/``
(``teacher/coco/bbox_mAP``), are logged once on a line of their own and, through the
message hub, in every validation line (and the visualizer's scalars) of the run.
The teacher is built and evaluated under a forked torch (CPU) RNG, so switching the
loop on leaves the random state of the student's training as ``ValLoop`` does. In a
distributed run each rank evaluates its shard and the evaluator collects them, as
for the student. (MMRazor's
``SingleTeacherDistillValLoop`` re-evaluates the teacher at every validation and
prefixes ``teacher.``.)
"""
import copy
import numbers
from typing import Dict, List, Optional, Union

import torch
from mmdet.registry import LOOPS, MODELS
from mmengine.evaluator import Evaluator
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.runner import ValLoop, autocast
from torch.utils.data import DataLoader

from ..utils.errors import UserError
from .feature_distiller import FeatureDistiller
from .teacher import OPTIONAL_BUFFERS, load_teacher_model_config, read_state_dict

PREFIX = 'teacher/'


def build_whole_teacher(teacher: dict) -> BaseModel:
    """The teacher detector of ``model.teacher`` with every checkpoint weight loaded
    (strict: a missing, unexpected or other-shape tensor is a one-line UserError)."""
    path = teacher.get('checkpoint')
    if not path:
        raise UserError("val_cfg type='TeacherEvalValLoop' evaluates the teacher: "
                        'model.teacher.checkpoint is not set')
    detector = MODELS.build(load_teacher_model_config(teacher['config']))
    state, wanted = read_state_dict(path), detector.state_dict()
    found = {
        'missing': [k for k in wanted
                    if k not in state and not k.endswith(OPTIONAL_BUFFERS)],
        'unexpected': [k for k in state if k not in wanted],
        'of another shape': [k for k in wanted
                             if k in state and state[k].shape != wanted[k].shape]}
    problems = [f'{len(keys)} {what} ({", ".join(keys[:3])}'
                f'{", ..." if len(keys) > 3 else ""})'
                for what, keys in found.items() if keys]
    if problems:
        raise UserError(
            f"teacher checkpoint '{path}' does not hold the whole teacher detector "
            f"({len(wanted)} tensors): {'; '.join(problems)}. val_cfg type="
            "'TeacherEvalValLoop' evaluates the teacher with its heads: give a "
            "checkpoint of the whole detector, or use val_cfg = dict(type='ValLoop')")
    detector.load_state_dict(state, strict=False)  # strict but for OPTIONAL_BUFFERS
    return detector.eval()


@LOOPS.register_module()
class TeacherEvalValLoop(ValLoop):
    """mmengine's ``ValLoop`` for the student, plus the teacher's metrics, computed
    once at the first validation and logged with the ``teacher/`` prefix at every
    validation (module docstring). Arguments as ``ValLoop``'s."""

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List], fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        teacher = (runner.cfg.get('model') or {}).get('teacher')
        if not isinstance(model, FeatureDistiller) or not teacher:
            raise UserError(
                "val_cfg type='TeacherEvalValLoop' needs model.type='FeatureDistiller' "
                f'with model.teacher, got {type(model).__name__}: use '
                "val_cfg = dict(type='ValLoop')")
        self._evaluator_cfg = evaluator  # copied for the teacher's own evaluator
        with torch.random.fork_rng(devices=[]):  # building draws random init weights
            self._teacher: Optional[BaseModel] = build_whole_teacher(teacher)
        self.teacher_metrics: Optional[Dict[str, float]] = None

    def run(self) -> dict:
        """Evaluate the teacher if not done yet, log its metrics, validate the student."""
        if self.teacher_metrics is None:
            with torch.random.fork_rng(devices=[]):  # (the dataloader draws a seed)
                self.teacher_metrics = self._evaluate_teacher()
            self._teacher = None  # freed
            self.runner.logger.info('TeacherEvalValLoop, the teacher (evaluated once): '
                                    + '  '.join(f'{k}: {v:.4f}' for k, v in
                                                self.teacher_metrics.items()))
        for key, value in self.teacher_metrics.items():
            # read by the LoggerHook's validation line and its visualizer scalars
            self.runner.message_hub.update_scalar(f'val/{key}', value)
        return super().run()

    @torch.no_grad()
    def _evaluate_teacher(self) -> Dict[str, float]:
        """``{'teacher/<metric>': value}`` (scalars) of the teacher on this loop's
        dataloader, through a fresh copy of the evaluator."""
        assert self._teacher is not None, 'the teacher is evaluated once'
        evaluator = self.runner.build_evaluator(copy.deepcopy(self._evaluator_cfg))
        evaluator.dataset_meta = getattr(self.dataloader.dataset, 'metainfo', None)
        teacher = self._teacher.to(next(self.runner.model.parameters()).device)
        for data_batch in self.dataloader:
            with autocast(enabled=self.fp16):
                outputs = teacher.val_step(data_batch)
            evaluator.process(data_samples=outputs, data_batch=data_batch)
        metrics = evaluator.evaluate(len(self.dataloader.dataset))
        return {PREFIX + k: float(v) for k, v in metrics.items()
                if isinstance(v, numbers.Number)}
