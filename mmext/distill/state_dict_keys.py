"""Key names of distillation checkpoints: ours (the student's own) and MMRazor's.

``FeatureDistiller.state_dict()`` writes ``student.x`` as ``x`` and ``adapters.x``
as ``distill_adapters.x``, so a checkpoint saved during distillation without
adapters loads into the plain student config; ``load_state_dict()`` maps them back
(and accepts the module's own names, plain student checkpoints and MMRazor's
layout). The teacher is not a submodule and is never saved.

MMRazor's distillation algorithms (``BaseAlgorithm`` / ``SingleTeacherDistill``)
save ``architecture.<student key>``, ``teacher.<teacher key>`` and the distiller's
own modules (``distiller.*``); its ``tools/model_converters/
convert_kd_ckpt_to_student.py`` keeps the ``architecture.`` keys, prefix removed.
"""
from typing import Dict, Iterable, Optional, Sequence, Tuple, TypeVar

from torch import nn

ADAPTER_PREFIX = 'distill_adapters.'
MMRAZOR_STUDENT_PREFIX = 'architecture.'
# every top-level module of an MMRazor distillation algorithm
MMRAZOR_PREFIXES = (MMRAZOR_STUDENT_PREFIX, 'teacher.', 'distiller.', 'data_preprocessor.')
CONVERTER = 'tools/convert_distill_checkpoint.py'

_Value = TypeVar('_Value')


def _under(keys: Sequence[str], student: str, prefixes: Tuple[str, ...]) -> bool:
    """Some keys start with ``student`` and every key with one of ``prefixes``."""
    return any(k.startswith(student) for k in keys) and all(
        k.startswith(prefixes) for k in keys)


def distillation_layout(keys: Iterable[str]) -> Optional[str]:
    """The layout of a state dict's keys:

    * ``'mmrazor'``: MMRazor's (``architecture.`` keys, every key under one of the
      algorithm's modules);
    * ``'modules'``: a FeatureDistiller's module names (``student.``, ``adapters.``),
      i.e. a state dict taken around our key hooks;
    * ``'mmext'``: what FeatureDistiller saves when it has adapters (the student's
      own names + ``distill_adapters.``);
    * ``None``: anything else, e.g. a plain model (what FeatureDistiller saves
      without adapters is exactly a plain student checkpoint).

    The first two leave a plain student unloaded; the third loads all of it.
    """
    keys = list(keys)
    if _under(keys, MMRAZOR_STUDENT_PREFIX, MMRAZOR_PREFIXES):
        return 'mmrazor'
    if _under(keys, 'student.', ('student.', 'adapters.', 'data_preprocessor.')):
        return 'modules'
    if any(k.startswith(ADAPTER_PREFIX) for k in keys):
        return 'mmext'
    return None


def plain_student_state(state_dict: Dict[str, _Value]) -> Dict[str, _Value]:
    """The student's weights under the student's own names, from a distillation
    state dict in any layout (:func:`distillation_layout`): what the plain student
    config loads with no missing or unexpected keys.

    MMRazor's: the ``architecture.`` keys, prefix removed; the teacher's and the
    distiller's are dropped. Module names: the ``student.`` keys, prefix removed.
    Ours: every key but the adapters' (the others already have the student's
    names, :func:`student_keys_hook`).
    """
    layout = distillation_layout(state_dict)
    student = {'mmrazor': MMRAZOR_STUDENT_PREFIX, 'modules': 'student.'}.get(layout)
    if student is not None:
        return {k[len(student):]: v for k, v in state_dict.items()
                if k.startswith(student)}
    return {k: v for k, v in state_dict.items() if not k.startswith(ADAPTER_PREFIX)}


def register_key_hooks(module: nn.Module) -> None:
    """Make ``module.state_dict()`` / ``load_state_dict()`` use the student's names."""
    # torch >= 2.5 has public hooks (pytorch#131690) with these signatures; the
    # private ones are the only form in torch 2.1-2.4, which pyproject.toml allows.
    if hasattr(module, 'register_state_dict_post_hook'):
        module.register_state_dict_post_hook(student_keys_hook)
    else:
        module._register_state_dict_hook(student_keys_hook)
    if hasattr(module, 'register_load_state_dict_pre_hook'):
        module.register_load_state_dict_pre_hook(student_keys_pre_hook)
    else:
        module._register_load_state_dict_pre_hook(student_keys_pre_hook, with_module=True)


def student_keys_hook(module, state_dict, prefix, local_metadata) -> None:
    """State-dict post-hook: 'student.x' -> 'x', 'adapters.x' ->
    'distill_adapters.x' (metadata, which carries BN versions, likewise)."""
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
    # state_dict() keeps per-module versions in this attribute (no public accessor);
    # load_state_dict reads it back, so renamed keys need renamed entries.
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in list(metadata):
            full = key + '.'
            for old, new in renames.items():
                if full.startswith(old):
                    metadata[(new + full[len(old):])[:-1]] = metadata.pop(key)
                    break


def student_keys_pre_hook(module, state_dict, prefix, local_metadata, strict,
                          missing_keys, unexpected_keys, error_msgs) -> None:
    """Load-state-dict pre-hook: accept the keys that
    :func:`student_keys_hook` writes, the module's own key names and MMRazor's
    layout (``architecture.x`` is the student's ``x``; its teacher, loaded from
    ``model.teacher.checkpoint``, and distiller keys are dropped)."""
    ours = {k[len(prefix):]: k for k in state_dict if k.startswith(prefix)}
    if distillation_layout(ours) == 'mmrazor':
        for rest, key in ours.items():
            value = state_dict.pop(key)
            if rest.startswith(MMRAZOR_STUDENT_PREFIX):
                state_dict[prefix + rest[len(MMRAZOR_STUDENT_PREFIX):]] = value
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
