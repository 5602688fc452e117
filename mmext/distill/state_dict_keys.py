"""Key names of a ``FeatureDistiller`` state dict: the student's own.

``state_dict()`` writes ``student.x`` as ``x`` and ``adapters.x`` as
``distill_adapters.x``, so a checkpoint saved during distillation loads into the
plain student config (``tools/test.py``); ``load_state_dict()`` maps them back (and
accepts the module's own names and plain student checkpoints). The teacher is not a
submodule and is never saved.
"""
from typing import Dict, TypeVar

ADAPTER_PREFIX = 'distill_adapters.'

_Value = TypeVar('_Value')


def plain_student_state(state_dict: Dict[str, _Value]) -> Dict[str, _Value]:
    """A ``FeatureDistiller.state_dict()`` without the adapters: what the plain
    student config loads with no missing or unexpected keys.

    Every other key already has the student's own name (:func:`student_keys_hook`),
    so nothing is renamed.
    """
    return {k: v for k, v in state_dict.items() if not k.startswith(ADAPTER_PREFIX)}


def student_keys_hook(module, state_dict, prefix, local_metadata) -> None:
    """``_register_state_dict_hook``: 'student.x' -> 'x', 'adapters.x' ->
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
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in list(metadata):
            full = key + '.'
            for old, new in renames.items():
                if full.startswith(old):
                    metadata[(new + full[len(old):])[:-1]] = metadata.pop(key)
                    break


def student_keys_pre_hook(state_dict, prefix, local_metadata, strict, missing_keys,
                          unexpected_keys, error_msgs) -> None:
    """``_register_load_state_dict_pre_hook``: accept the keys that
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
