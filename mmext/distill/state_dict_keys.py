"""Key names of a ``FeatureDistiller`` state dict: the student's own.

``state_dict()`` writes ``student.x`` as ``x`` and ``adapters.x`` as
``distill_adapters.x``, so a checkpoint saved during distillation loads into the
plain student config (``tools/test.py``); ``load_state_dict()`` maps them back (and
accepts the module's own names and plain student checkpoints). The teacher is not a
submodule and is never saved.
"""
from typing import Dict, TypeVar

from torch import nn

ADAPTER_PREFIX = 'distill_adapters.'

_Value = TypeVar('_Value')


def plain_student_state(state_dict: Dict[str, _Value]) -> Dict[str, _Value]:
    """A ``FeatureDistiller.state_dict()`` without the adapters: what the plain
    student config loads with no missing or unexpected keys.

    Every other key already has the student's own name (:func:`student_keys_hook`),
    so nothing is renamed.
    """
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
    :func:`student_keys_hook` writes, as well as the module's own key names."""
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
