"""Make mmengine checkpoints loadable under torch>=2.6's ``weights_only=True`` default.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6 that
means the restricted unpickler, which refuses the non-tensor objects mmengine itself
writes into checkpoints (the message hub's ``HistoryBuffer`` and the numpy arrays,
dtypes and scalars inside it and in ``meta``). Rather than turning the protection off
(``weights_only=False`` would execute arbitrary pickled code from any checkpoint), we
allow-list exactly those known-safe types.

:func:`load_checkpoint_file` is the one place where mmext's tools load a local
checkpoint themselves (pre-flight checks, PKD teacher, converters): weights_only
with those globals, and a one-line :class:`~mmext.utils.errors.UserError` naming the
file and the reason (empty, truncated, not a checkpoint, refused object) on failure.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import UserError


def _numpy_globals() -> List[Any]:
    """numpy objects that appear when pickling arrays, dtypes and scalars."""
    # numpy 1.x keeps these in numpy.core, numpy 2.x in numpy._core.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    found: List[Any] = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # Each concrete dtype has its own class (numpy>=1.25), e.g. numpy.dtypes.Float64DType.
    found += [type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGUSO']
    return found


_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling.

    A ``HistoryBuffer`` pickles its statistic methods (``min``, ``mean``, ...) as
    ``getattr(HistoryBuffer, 'min')``. Allow-listing the real ``getattr`` would let a
    checkpoint fetch any attribute of any allowed object; this one fetches only those.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    # _statistics_methods fills up only when a buffer is created, so a fresh
    # process needs the built-in names too.
    allowed = _HISTORY_BUFFER_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); mmext only allows '
        "HistoryBuffer's statistic methods")


def safe_checkpoint_globals() -> List[Any]:
    """Every global mmext allow-lists for ``torch.load(weights_only=True)``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
            *_numpy_globals()]


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`safe_checkpoint_globals` (idempotent: torch keeps a set).

    Called before every load, not once per process: ``torch.serialization.
    safe_globals(...)`` *removes* its globals on exit, including ones that were
    allow-listed before it, and OneDL's mmengine wraps its own ``torch.load`` in
    that context with HistoryBuffer and numpy types in the list, so after any
    mmengine checkpoint load those are gone from torch's allow-list.
    """
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return  # torch < 2.4 has no weights_only default to work around
    torch.serialization.add_safe_globals(safe_checkpoint_globals())


# ``torch.save``'s zip format starts with a zip local-file header; the legacy format
# (and a plain pickle) with the pickle PROTO opcode.
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'
_REFUSED_GLOBAL = re.compile(r'GLOBAL (\S+)')
_REFUSED_OTHER = re.compile(r'(Unsupported (?:operand|class) \S+)')


def _refusal_reason(exc: pickle.UnpicklingError) -> Optional[str]:
    """The refused object of a weights_only ``UnpicklingError``, if it is one."""
    text = str(exc)
    if 'weights_only' not in text and 'Weights only' not in text:
        return None
    refused = ('torch.load(weights_only=True) refused it: it was not loaded and '
               'nothing in it was executed. Use only checkpoints from a source you trust')
    match = _REFUSED_GLOBAL.search(text)
    if match:
        return f'holds a disallowed object ({match.group(1).rstrip(".")}); {refused}'
    match = _REFUSED_OTHER.search(text)
    found = f' ({match.group(1).rstrip(".")})' if match else ''
    return f'holds pickle data that is not a torch checkpoint{found}; {refused}'


def describe_load_error(path: str, exc: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in one line of plain words.

    torch's own messages are several paragraphs long and name miniz or pickle
    internals; this names the likely cause (empty, truncated, not a checkpoint,
    disallowed object) from the exception and the file's first bytes.
    """
    if isinstance(exc, pickle.UnpicklingError):
        reason = _refusal_reason(exc)
        if reason:
            return reason
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(16)
    except OSError as os_exc:
        return f'cannot be opened ({os_exc.strerror or os_exc})'
    if size == 0:
        return 'is empty (0 bytes): not a checkpoint'
    if head.startswith(_ZIP_MAGIC):
        return (f'is truncated or corrupt ({size} bytes; torch cannot read it as a zip '
                'checkpoint archive). Copy or download it again')
    if not head.startswith(_PICKLE_PROTO):
        return (f'is not a checkpoint (neither a torch zip archive nor a pickle; it '
                f'starts with {head[:12]!r})')
    if isinstance(exc, EOFError):
        return (f'is truncated ({size} bytes; the pickle ends early). Copy or '
                'download it again')
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
    return f'cannot be read ({type(exc).__name__}: {first[:200]})'


def load_checkpoint_file(path: str, what: str = 'checkpoint', *, mmap: bool = False,
                         refused_hint: str = '') -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` of a local file,
    with mmext's safe globals; any failure is a one-line :class:`UserError`.

    Args:
        path: a local checkpoint file.
        what: how the message names the file (``'checkpoint'``, ``'--resume'``,
            ``'teacher checkpoint'``, ...).
        mmap: memory-map the tensors (zip checkpoints) instead of reading them: the
            pickle is still parsed in full, so this validates a large checkpoint
            without reading its weights.
        refused_hint: appended to the message when weights_only refused an object
            (e.g. a tool's ``--trust-checkpoint`` option).

    Returns:
        What ``torch.save`` stored (usually a dict with ``state_dict``/``meta``).
    """
    register_checkpoint_safe_globals()
    if not os.path.isfile(path):
        raise UserError(f"{what} '{path}' does not exist (check the path; "
                        'checkpoints are written to <work_dir>/iter_*.pth or '
                        'epoch_*.pth)')
    try:
        with open(path, 'rb') as f:
            is_zip = f.read(4) == _ZIP_MAGIC
        # mmap is only possible for zip checkpoints (torch refuses it otherwise).
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of plain pickles before it
            # refuses them: noise next to our one-line error.
            warnings.filterwarnings('ignore', message='Detected pickle protocol')
            return torch.load(path, map_location='cpu', weights_only=True,
                              mmap=mmap and is_zip)
    except Exception as exc:  # noqa: BLE001  (torch/pickle raise many types)
        refused = isinstance(exc, pickle.UnpicklingError) and _refusal_reason(exc)
        raise UserError(f"{what} '{path}' {describe_load_error(path, exc)}"
                        f"{refused_hint if refused else ''}") from exc


def load_foreign_state_dict(path: str, what: str,
                            trust: bool = False) -> dict:
    """The tensor state dict of another codebase's checkpoint (a bare state dict or
    one under ``state_dict``; a DDP ``module.`` prefix stripped), for the model
    converters.

    ``trust=True`` (their ``--trust-checkpoint``) loads with ``weights_only=False``
    for old pickles holding objects that weights_only refuses; otherwise the refusal
    message suggests that option. Every failure is a one-line :class:`UserError`.
    """
    if trust:
        try:
            checkpoint = torch.load(path, map_location='cpu', weights_only=False)
        except Exception as exc:  # noqa: BLE001  (torch/pickle raise many types)
            raise UserError(f"{what} '{path}' {describe_load_error(path, exc)}") from exc
    else:
        checkpoint = load_checkpoint_file(
            path, what, refused_hint=' (if you trust the file, rerun with '
            '--trust-checkpoint)')
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint,
                                                                   dict) else None
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"'{path}' holds no state_dict of tensors")
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items()}


def place_tensors(source: dict, target: dict, map_key: Callable[[str], Optional[str]],
                  *, part: str = 'model', skip: Sequence[str] = (),
                  convert: Optional[Callable[[str, str, torch.Tensor], torch.Tensor]] = None,
                  may_be_missing: Callable[[str], bool] = lambda key: False,
                  shown: int = 20) -> Tuple[dict, List[str]]:
    """Put each tensor of another codebase's ``source`` state dict on the tensor of
    ``target`` (our ``state_dict()``) that ``map_key`` names, key by key: the model
    converters' shared core.

    Args:
        source: the foreign state dict.
        target: the state dict to fill (keys, shapes, dtypes).
        map_key: source key -> target key, or ``None`` for no place.
        part: how messages name the target ('model', 'backbone').
        skip: source keys dropped on purpose (e.g. an ImageNet classifier).
        convert: ``(source key, target key, tensor) -> tensor`` applied before the
            shape check (e.g. a channel reorder); may raise :class:`UserError`.
        may_be_missing: target keys that may stay unfilled (the caller fills them).

    Returns:
        The placed tensors (cast to the target's dtypes) and one line per kind of
        problem (``'<what> (<count>): key, key, ...'``, at most ``shown`` keys): source
        keys with no place, shape mismatches, target keys filled twice or not at all.
    """
    out: dict = {}
    source_of: Dict[str, str] = {}
    unplaced: List[str] = []
    mismatched: List[str] = []
    doubled: List[str] = []
    reported = set()  # target keys already named in a shape mismatch
    for key, value in source.items():
        if key in skip:
            continue
        new_key = map_key(key)
        if new_key is None or new_key not in target:
            unplaced.append(f'{key} (-> {new_key})' if new_key else key)
            continue
        if new_key in out:
            doubled.append(f'{new_key} <- {source_of[new_key]}, {key}')
            continue
        if convert is not None:
            value = convert(key, new_key, value)
        want = target[new_key]
        if tuple(value.shape) != tuple(want.shape):
            mismatched.append(f'{key} {tuple(value.shape)} -> {new_key} '
                              f'{tuple(want.shape)}')
            reported.add(new_key)
            continue
        out[new_key] = value.to(want.dtype) if value.is_floating_point() else value
        source_of[new_key] = key
    missing = sorted(k for k in set(target) - set(out) - reported
                     if not may_be_missing(k))
    groups = ((f'official keys with no place in the {part}', unplaced),
              ('shape mismatches', mismatched),
              (f'{part} keys given twice', doubled),
              (f'{part} keys the checkpoint does not fill', missing))
    return out, [f'{title} ({len(items)}): ' + ', '.join(items[:shown])
                 + (' ...' if len(items) > shown else '')
                 for title, items in groups if items]
