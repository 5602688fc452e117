"""Make mmengine checkpoints loadable under torch>=2.6's ``weights_only=True`` default.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6 that
means the restricted unpickler, which refuses the non-tensor objects mmengine itself
writes into checkpoints (the message hub's ``HistoryBuffer`` and the numpy arrays,
dtypes and scalars inside it and in ``meta``). Rather than turning the protection off
(``weights_only=False`` would execute arbitrary pickled code from any checkpoint), we
allow-list exactly those known-safe types.
"""
from __future__ import annotations

import pickle
from typing import Any, List

import numpy as np
import torch


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


_registered = False


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`safe_checkpoint_globals` once per process (idempotent)."""
    global _registered
    if _registered or not hasattr(torch.serialization, 'add_safe_globals'):
        return  # torch < 2.4 has no weights_only default to work around
    torch.serialization.add_safe_globals(safe_checkpoint_globals())
    _registered = True
