"""``FeatureDistiller``: distil a frozen teacher's FPN features into any mmdet detector.

    model = dict(
        type='FeatureDistiller',
        student=dict(type='RetinaNet', ...),            # any mmdet detector config
        teacher=dict(config='mmdet::swin/mask-rcnn_swin-s-...py',   # or a local .py
                     checkpoint='checkpoints/teacher.pth'),
        distill=dict(loss=dict(type='PKDLoss', loss_weight=6.0),
                     pairing='stride',    # or 'index' (MMRazor's pairing)
                     levels=None,         # strides (or indices) to distil; None: all shared
                     adapter='auto'))     # 1x1 conv when channel counts differ

Design (see docs/pkd.md):

* The teacher is built from its own config, only its backbone and neck are kept
  (the heads are dropped), its checkpoint is loaded and checked at construction time
  (so a missing or mismatched checkpoint fails before the first iteration), and it
  is frozen: ``requires_grad=False``, always in eval mode (``train()`` does not reach
  it), run under ``no_grad``. It is NOT a registered submodule: it does not appear in
  ``parameters()`` (optimizer, DDP), ``state_dict()`` or ``init_weights()``;
  ``to()`` / ``cuda()`` / ``half()`` still move it (``_apply`` is forwarded).
* Levels are paired by stride, measured with one dummy forward of each trunk at
  construction time (works for any neck); ``pairing='index'`` pairs by position.
* ``state_dict()`` is the student's own state dict with its usual key names (plus
  ``distill_adapters.*`` when adapters exist), so a checkpoint saved during
  distillation loads into the plain student config (``tools/test.py``);
  ``tools/convert_distill_checkpoint.py`` strips the adapter keys and the training
  state for deployment.
"""
import copy
import math
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from torch import Tensor

from ..engine.errors import UserError

ADAPTER_PREFIX = 'distill_adapters.'
_DUMMY_SIZE = 256  # dummy input side for measuring strides (divisible by 128 and 256)
# Buffers that some checkpoints lack and that need no loading (recomputed/unused).
_OPTIONAL_BUFFERS = ('num_batches_tracked', 'relative_position_index')


def _as_dict(cfg) -> ConfigDict:
    """A deep copy as a ConfigDict (mmdet models read their cfgs by attribute)."""
    if isinstance(cfg, Config):
        cfg = cfg._cfg_dict
    return ConfigDict(copy.deepcopy(cfg.to_dict() if isinstance(cfg, ConfigDict)
                                    else dict(cfg)))


def load_teacher_model_config(config: Union[str, dict]) -> dict:
    """The ``model`` dict of a teacher config.

    ``config`` is a local config file, a package config (``'mmdet::path.py'``,
    ``'mmext::path.py'``) or already a model dict.
    """
    if isinstance(config, (dict, ConfigDict)):
        cfg = _as_dict(config)
        return cfg['model'] if 'model' in cfg else cfg
    if not isinstance(config, str):
        raise UserError(f'model.teacher.config must be a config path or a model dict, '
                        f'got {type(config).__name__}')
    if '::' in config:
        # Config.fromfile('mmdet::...') does not resolve packages; a config file
        # whose _base_ is the package path does.
        fd, tmp = tempfile.mkstemp(suffix='.py', prefix='mmext_teacher_')
        try:
            with os.fdopen(fd, 'w') as f:
                f.write(f'_base_ = {config!r}\n')
            try:
                cfg = Config.fromfile(tmp)
            except FileNotFoundError as exc:
                raise UserError(f"teacher config '{config}' not found ({exc})") from exc
        finally:
            os.remove(tmp)
    else:
        if not osp.isfile(config):
            raise UserError(f"teacher config '{config}' does not exist (model.teacher."
                            "config: a local .py config or 'mmdet::<path>.py')")
        cfg = Config.fromfile(config)
    if 'model' not in cfg:
        raise UserError(f"teacher config '{config}' has no 'model'")
    return _as_dict(cfg.model)


class TeacherTrunk(nn.Module):
    """The backbone (+ neck) of a detector: the part of the teacher that runs."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.backbone = detector.backbone
        self.neck = getattr(detector, 'neck', None)

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)


def _read_state_dict(path: str) -> Dict[str, Tensor]:
    from mmengine.runner.checkpoint import _load_checkpoint
    try:
        checkpoint = _load_checkpoint(path, map_location='cpu')
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
    source = {k: v for k, v in _read_state_dict(path).items()
              if k.startswith(('backbone.', 'neck.'))}
    wanted = trunk.state_dict()
    missing = [k for k in wanted if k not in source
               and not k.endswith(_OPTIONAL_BUFFERS)]
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


@torch.no_grad()
def measure_levels(extract, module: nn.Module,
                   size: int = _DUMMY_SIZE) -> List[Tuple[int, int]]:
    """(stride, channels) of each feature map ``extract`` returns, by a dummy forward.

    ``module`` is put in eval mode for the forward (no BN statistics change) and
    restored afterwards.
    """
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        param = next(module.parameters(), None)
        device = param.device if param is not None else torch.device('cpu')
        feats = extract(torch.zeros(1, 3, size, size, device=device))
    finally:
        for m, mode in modes.items():
            m.training = mode
    if isinstance(feats, Tensor):
        feats = (feats, )
    return [(2**round(math.log2(size / f.shape[-1])), f.shape[1]) for f in feats]


def _preprocessor_norm(pre: nn.Module) -> Tuple[Optional[Tensor], Optional[Tensor], bool]:
    if getattr(pre, '_enable_normalize', False):
        mean, std = pre.mean.detach().clone().float(), pre.std.detach().clone().float()
    else:
        mean = std = None
    return mean, std, bool(getattr(pre, '_channel_conversion', False))


@MODELS.register_module()
class FeatureDistiller(BaseDetector):
    """A student detector trained with feature distillation from a frozen teacher.

    Args:
        student: config of any mmdet detector (the model that is trained, tested
            and saved).
        teacher: ``dict(config=<local .py | 'mmdet::...py' | model dict>,
            checkpoint=<path>, checkpoint_url=<optional, shown when missing>)``.
            ``checkpoint=None`` is refused unless ``random_init=True`` (tests and
            model building only: the teacher would be untrained).
        distill: ``loss`` (default ``PKDLoss``), ``pairing`` ('stride' or 'index'),
            ``levels`` (strides for stride pairing, student level indices for index
            pairing; ``None``: every shared stride / every index both necks have),
            ``adapter`` ('auto': 1x1 conv where channel counts differ; True: always;
            False: never, channel mismatch is an error).
        data_preprocessor: defaults to the student's.
    """

    def __init__(self,
                 student: dict,
                 teacher: dict,
                 distill: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        student, teacher = _as_dict(student), _as_dict(teacher)
        distill = _as_dict(distill or {})
        unknown = set(teacher) - {'config', 'checkpoint', 'checkpoint_url', 'random_init'}
        if unknown or 'config' not in teacher:
            raise UserError('model.teacher must be dict(config=..., checkpoint=...)'
                            + (f'; unknown keys {sorted(unknown)}' if unknown else ''))
        checkpoint = teacher.get('checkpoint')
        self._check_teacher_checkpoint_path(checkpoint, teacher)  # fail fast

        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        if isinstance(data_preprocessor, dict):  # mmdet's registry, whatever the scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(student)

        teacher_model = MODELS.build(load_teacher_model_config(teacher['config']))
        trunk = TeacherTrunk(teacher_model)
        config_name = teacher['config'] if isinstance(teacher['config'], str) \
            else teacher_model.__class__.__name__
        if checkpoint:
            load_teacher_checkpoint(trunk, checkpoint, config_name)
        for param in trunk.parameters():
            param.requires_grad_(False)
        trunk.eval()
        self._set_teacher_input_transform(trunk, teacher_model.data_preprocessor)
        del teacher_model  # heads are never used
        object.__setattr__(self, '_teacher', trunk)  # not a submodule (see module doc)

        self.distill_loss = MODELS.build(
            distill.get('loss', dict(type='PKDLoss', loss_weight=1.0)))
        self.pairing = distill.get('pairing', 'stride')
        self.student_levels = measure_levels(self.student.extract_feat, self.student)
        self.teacher_levels = measure_levels(trunk, trunk)
        self.level_pairs = self._pair_levels(distill.get('levels'))
        self.adapters = self._build_adapters(distill.get('adapter', 'auto'))

        self._register_state_dict_hook(_student_keys_hook)
        self._register_load_state_dict_pre_hook(_student_keys_pre_hook)

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _check_teacher_checkpoint_path(checkpoint: Optional[str], teacher: dict) -> None:
        if not checkpoint:
            if teacher.get('random_init'):
                return
            raise UserError('model.teacher.checkpoint is not set: distillation needs '
                            'a trained teacher (set model.teacher.checkpoint=<path>)')
        if '://' in checkpoint or osp.isfile(checkpoint):
            return
        where = f" from {teacher['checkpoint_url']}" if teacher.get('checkpoint_url') \
            else ''
        raise UserError(
            f"teacher checkpoint '{checkpoint}' not found: download it{where} to that "
            'path, or point the config at it with --cfg-options '
            'model.teacher.checkpoint=<path>')

    @property
    def teacher(self) -> TeacherTrunk:
        """The frozen teacher backbone + neck."""
        return self._teacher

    def _set_teacher_input_transform(self, trunk: nn.Module, teacher_pre: nn.Module):
        """Re-normalise student inputs for a teacher with another mean/std/order."""
        s_mean, s_std, s_swap = _preprocessor_norm(self.data_preprocessor)
        t_mean, t_std, t_swap = _preprocessor_norm(teacher_pre)
        same = s_swap == t_swap and (s_mean is None) == (t_mean is None) and (
            s_mean is None or (torch.allclose(s_mean, t_mean)
                               and torch.allclose(s_std, t_std)))
        self._renormalize = not same
        self._swap_channels = s_swap != t_swap
        identity = (torch.zeros(3, 1, 1), torch.ones(3, 1, 1))
        s_mean, s_std = (s_mean, s_std) if s_mean is not None else identity
        t_mean, t_std = (t_mean, t_std) if t_mean is not None else identity
        for name, value in (('s_mean', s_mean), ('s_std', s_std),
                            ('t_mean', t_mean), ('t_std', t_std)):
            trunk.register_buffer(name, value, persistent=False)

    def _pair_levels(self, levels: Optional[Sequence[int]]) -> List[Tuple[str, int, int]]:
        """[(name, student index, teacher index)] of the distilled levels."""
        s_strides = [s for s, _ in self.student_levels]
        t_strides = [s for s, _ in self.teacher_levels]
        if self.pairing == 'index':
            count = min(len(s_strides), len(t_strides))
            levels = list(range(count)) if levels is None else list(levels)
            for i in levels:
                for who, n in (('student', len(s_strides)), ('teacher', len(t_strides))):
                    if not 0 <= i < n:
                        raise UserError(f'distill level index {i} does not exist: the '
                                        f'{who} neck has {n} levels')
            return [(str(i), i, i) for i in levels]
        if self.pairing != 'stride':
            raise UserError(f"distill.pairing must be 'stride' or 'index', got "
                            f'{self.pairing!r}')
        for who, strides in (('student', s_strides), ('teacher', t_strides)):
            if len(set(strides)) != len(strides):
                raise UserError(f'the {who} neck has several maps of one stride '
                                f"({strides}): use distill.pairing='index'")
        if levels is None:
            levels = [s for s in s_strides if s in t_strides]
            if not levels:
                raise UserError(f'student strides {s_strides} and teacher strides '
                                f'{t_strides} share none: nothing to distil')
        pairs = []
        for stride in levels:
            for who, strides in (('student', s_strides), ('teacher', t_strides)):
                if stride not in strides:
                    raise UserError(f'distill level stride {stride} is not produced by '
                                    f'the {who} neck (its strides: {strides})')
            pairs.append((f's{stride}', s_strides.index(stride), t_strides.index(stride)))
        return pairs

    def _build_adapters(self, mode: Union[str, bool]) -> nn.ModuleDict:
        if mode not in ('auto', True, False):
            raise UserError(f"distill.adapter must be 'auto', True or False, got {mode!r}")
        adapters = nn.ModuleDict()
        for name, i_s, i_t in self.level_pairs:
            c_s, c_t = self.student_levels[i_s][1], self.teacher_levels[i_t][1]
            if c_s != c_t and mode is False:
                raise UserError(
                    f'distill level {name}: the student has {c_s} channels, the '
                    f'teacher {c_t}; PKD needs equal channels. Set distill.adapter='
                    "'auto' (1x1 conv adapter) or change a neck's out_channels")
            if mode is True or c_s != c_t:
                adapters[name] = nn.Conv2d(c_s, c_t, kernel_size=1, bias=False)
        return adapters

    # --------------------------------------------------------------- modules
    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self._teacher._apply(fn, *args, **kwargs)  # to()/cuda()/half() reach it
        return self

    def train(self, mode: bool = True) -> 'FeatureDistiller':
        super().train(mode)
        self._teacher.eval()  # frozen: BN statistics and dropout stay in eval mode
        return self

    # ---------------------------------------------------------------- forward
    def teacher_inputs(self, inputs: Tensor) -> Tensor:
        if not self._renormalize:
            return inputs
        t = self._teacher
        raw = inputs * t.s_std + t.s_mean
        if self._swap_channels:
            raw = raw.flip(1)
        return (raw - t.t_mean) / t.t_std

    @torch.no_grad()
    def teacher_features(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        self._teacher.eval()
        return self._teacher(self.teacher_inputs(inputs))

    def distill_losses(self, feats_s: Sequence[Tensor],
                       feats_t: Sequence[Tensor]) -> Dict[str, Tensor]:
        losses = {}
        for name, i_s, i_t in self.level_pairs:
            feat_s = feats_s[i_s]
            if name in self.adapters:
                feat_s = self.adapters[name](feat_s)
            losses[f'loss_pkd_{name}'] = self.distill_loss(feat_s, feats_t[i_t])
        return losses

    def loss(self, batch_inputs: Tensor, batch_data_samples) -> dict:
        """The student's own losses plus one distillation term per level."""
        captured: List = []
        trunk_end = getattr(self.student, 'neck', None) or self.student.backbone

        def capture(module, args, output):
            if not captured:  # the first trunk output of this step
                captured.append(output)

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
        return self.student._forward(batch_inputs, batch_data_samples)

    def extract_feat(self, batch_inputs: Tensor):
        return self.student.extract_feat(batch_inputs)


def _student_keys_hook(module, state_dict, prefix, local_metadata):
    """state_dict(): 'student.x' -> 'x', 'adapters.x' -> 'distill_adapters.x'."""
    renames = {prefix + 'student.': prefix, prefix + 'adapters.': prefix + ADAPTER_PREFIX}
    items = list(state_dict.items())
    for key, _ in items:
        del state_dict[key]
    for key, value in items:
        for old, new in renames.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        state_dict[key] = value
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in list(metadata):
            full = key + '.'
            for old, new in renames.items():
                if full.startswith(old):
                    metadata[(new + full[len(old):])[:-1]] = metadata.pop(key)
                    break


def _student_keys_pre_hook(state_dict, prefix, local_metadata, strict, missing_keys,
                           unexpected_keys, error_msgs):
    """load_state_dict(): accept the keys that ``_student_keys_hook`` writes (a plain
    student checkpoint loads too), as well as the module's own key names."""
    own = tuple(prefix + p for p in ('student.', 'adapters.', 'data_preprocessor.'))
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key.startswith(own):
            continue
        rest = key[len(prefix):]
        if rest.startswith(ADAPTER_PREFIX):
            new = prefix + 'adapters.' + rest[len(ADAPTER_PREFIX):]
        else:
            new = prefix + 'student.' + rest
        state_dict[new] = state_dict.pop(key)
