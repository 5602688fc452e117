"""The teacher of a ``FeatureDistiller``: its config, its checkpoint, its frozen trunk.

``build_teacher(dict(config=..., checkpoint=...))`` returns the teacher's backbone +
neck (:class:`TeacherTrunk`), trained weights loaded and checked, frozen
(``requires_grad=False``), and the teacher's data preprocessor (so that the
distiller can give the teacher the input normalisation it was trained with).
:func:`set_teacher_mode` sets its train/eval modes while the student trains.
Every problem (config or checkpoint missing, unreadable, of another architecture)
is a :class:`UserError` raised here, i.e. before the first training iteration.
"""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config
from mmengine.runner import CheckpointLoader
from mmengine.utils.dl_utils import is_norm
from torch import Tensor

from ..utils.checkpoint import load_checkpoint_file
from ..utils.errors import UserError
from .config_checks import as_config_dict, check_keys

TEACHER_KEYS = ('config', 'checkpoint', 'checkpoint_url', 'random_init', 'train_mode')
# The teacher's modes while the student trains (``model.teacher.train_mode``):
# 'norm_eval': normalisation layers in eval mode, the rest (dropout, drop-path) in
#     training mode, as MMRazor's ``SingleTeacherDistill.train()`` with its default
#     ``teacher_norm_eval=True`` (the authors' runs);
# 'eval': every module in eval mode (deterministic teacher features).
TEACHER_TRAIN_MODES = ('norm_eval', 'eval')
# Buffers that some checkpoints lack and that need no loading (recomputed/unused).
OPTIONAL_BUFFERS = ('num_batches_tracked', 'relative_position_index')


class TeacherTrunk(nn.Module):
    """The backbone (+ neck) of a detector: the part of the teacher that runs.

    ``forward``: (N, 3, H, W) input normalised as the teacher's own data
    preprocessor does -> tuple of neck maps (N, C_l, H / s_l, W / s_l).
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.backbone = detector.backbone
        self.neck = getattr(detector, 'neck', None)

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)


def load_teacher_model_config(config: Union[str, dict]) -> ConfigDict:
    """The ``model`` dict of a teacher config.

    ``config`` is a local config file, a package config (``'mmdet::path.py'``,
    ``'mmext::path.py'``, resolved by ``mmengine.hub.get_config``) or a model dict
    (or a whole config dict holding ``model``).
    """
    if isinstance(config, (dict, ConfigDict, Config)):
        cfg = as_config_dict(config)
        return cfg['model'] if 'model' in cfg else cfg
    if not isinstance(config, str):
        raise UserError(f'model.teacher.config must be a config path or a model dict, '
                        f'got {type(config).__name__}')
    if '::' in config:
        try:
            cfg = get_config(config)
        except (FileNotFoundError, ModuleNotFoundError, ValueError) as exc:
            raise UserError(f"teacher config '{config}' not found ({exc})") from exc
    else:
        if not osp.isfile(config):
            raise UserError(f"teacher config '{config}' does not exist (model.teacher."
                            "config: a local .py config or 'mmdet::<path>.py')")
        cfg = Config.fromfile(config)
    if 'model' not in cfg:
        raise UserError(f"teacher config '{config}' has no 'model'")
    return as_config_dict(cfg.model)


def check_checkpoint_path(teacher: dict) -> None:
    """Fail fast (before anything is built) on a checkpoint that is unset or absent."""
    checkpoint = teacher.get('checkpoint')
    if not checkpoint:
        if teacher.get('random_init'):
            return
        raise UserError('model.teacher.checkpoint is not set: distillation needs '
                        'a trained teacher (set model.teacher.checkpoint=<path>)')
    if '://' in checkpoint or osp.isfile(checkpoint):
        return
    where = f" from {teacher['checkpoint_url']}" if teacher.get('checkpoint_url') else ''
    raise UserError(
        f"teacher checkpoint '{checkpoint}' not found: download it{where} to that "
        'path, or point the config at it with --cfg-options '
        'model.teacher.checkpoint=<path>')


def read_state_dict(path: str) -> Dict[str, Tensor]:
    """The state dict of a checkpoint file or URL, without a DDP ``module.`` prefix.

    A local file goes through mmext's shared loader (weights_only, one-line errors
    for empty / truncated / non-checkpoint files and refused objects); URLs through
    mmengine's ``CheckpointLoader`` (download cache)."""
    if '://' not in path:
        checkpoint = load_checkpoint_file(path, 'teacher checkpoint')
    else:
        try:
            checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        except Exception as exc:  # noqa: BLE001  (any read failure is the user's file)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
            raise UserError(f"teacher checkpoint '{path}' cannot be read "
                            f'({type(exc).__name__}: {reason})') from exc
    state = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"teacher checkpoint '{path}' holds no state_dict")
    return {(k[len('module.'):] if k.startswith('module.') else k): v
            for k, v in state.items()}


def _examples(keys: Sequence[str], n: int = 3) -> str:
    shown = ', '.join(keys[:n])
    return shown + (', ...' if len(keys) > n else '')


def load_teacher_checkpoint(trunk: TeacherTrunk, path: str, config_name: str) -> None:
    """Load the backbone/neck weights of ``path`` into ``trunk``; UserError on mismatch."""
    source = {k: v for k, v in read_state_dict(path).items()
              if k.startswith(('backbone.', 'neck.'))}
    wanted = trunk.state_dict()
    missing = [k for k in wanted if k not in source
               and not k.endswith(OPTIONAL_BUFFERS)]
    unexpected = [k for k in source if k not in wanted]
    shapes = [f'{k} {tuple(source[k].shape)} vs {tuple(wanted[k].shape)}'
              for k in wanted if k in source and source[k].shape != wanted[k].shape]
    if missing or unexpected or shapes:
        problems = []
        if missing:
            problems.append(f'{len(missing)} of the {len(wanted)} backbone/neck '
                            f'tensors missing ({_examples(missing)})')
        if shapes:
            problems.append(f'{len(shapes)} with other shapes, checkpoint vs config '
                            f'({_examples(shapes, 2)})')
        if unexpected:
            problems.append(f'{len(unexpected)} unexpected ({_examples(unexpected)})')
        raise UserError(f"teacher checkpoint '{path}' does not match the teacher "
                        f"config '{config_name}': " + '; '.join(problems) +
                        '. Is it a checkpoint of another architecture?')
    trunk.load_state_dict(source, strict=False)


def check_teacher_cfg(teacher: dict) -> None:
    """Cheap checks of ``model.teacher`` (keys, checkpoint path, train_mode), run
    before building anything so that a wrong config fails in a second."""
    check_keys('teacher', teacher, TEACHER_KEYS)
    if 'config' not in teacher:
        raise UserError('model.teacher must be dict(config=..., checkpoint=...): '
                        "'config' is missing")
    mode = teacher.get('train_mode', 'norm_eval')
    if mode not in TEACHER_TRAIN_MODES:
        raise UserError(f'model.teacher.train_mode must be one of '
                        f'{TEACHER_TRAIN_MODES}, got {mode!r}')
    check_checkpoint_path(teacher)


def set_teacher_mode(trunk: nn.Module, training: bool, train_mode: str) -> None:
    """Modes of the frozen teacher when the distiller is put in ``training`` mode.

    ``training=False`` (validation, test): every module in eval mode.
    ``training=True``: ``train_mode='eval'`` keeps every module in eval mode;
    ``'norm_eval'`` (MMRazor's default) puts the teacher in training mode, then its
    normalisation layers in eval mode: BatchNorm statistics stay frozen, dropout and
    drop-path stay active (MMRazor sets only ``_BatchNorm`` layers to eval;
    LayerNorm / GroupNorm behave the same in both modes, so including them changes
    nothing but the flag). The teacher runs under ``no_grad`` either way.
    """
    if train_mode not in TEACHER_TRAIN_MODES:
        raise ValueError(f'train_mode must be one of {TEACHER_TRAIN_MODES}, '
                         f'got {train_mode!r}')
    if not training or train_mode == 'eval':
        trunk.eval()
        return
    trunk.train()
    for module in trunk.modules():
        if is_norm(module):
            module.eval()


def build_teacher(teacher: dict) -> Tuple[TeacherTrunk, nn.Module]:
    """(frozen trunk with the checkpoint's weights, the teacher's data preprocessor).

    ``teacher``: ``dict(config=..., checkpoint=..., checkpoint_url=..., random_init=...)``
    (see :class:`~mmext.distill.FeatureDistiller`). The heads are built (the config
    describes a whole detector) and dropped.
    """
    check_teacher_cfg(teacher)
    detector = MODELS.build(load_teacher_model_config(teacher['config']))
    trunk = TeacherTrunk(detector)
    checkpoint: Optional[str] = teacher.get('checkpoint')
    if checkpoint:
        name = teacher['config'] if isinstance(teacher['config'], str) \
            else detector.__class__.__name__
        load_teacher_checkpoint(trunk, checkpoint, name)
    for param in trunk.parameters():
        param.requires_grad_(False)
    trunk.eval()  # until the distiller's train() sets its training modes
    return trunk, detector.data_preprocessor
