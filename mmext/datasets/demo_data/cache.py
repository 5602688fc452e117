"""The finished-set marker and the atomic publication of a generated tree."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Optional

from .constants import DEMO_ROOT, GENERATOR_VERSION

MARKER = '.complete'  # written last: its presence means a finished set


def marker_text(num_train: int, num_val: int, image_size: int,
                seed: int) -> str:
    """The marker's text: generator version, arguments and their hash."""
    args = dict(
        num_train=int(num_train),
        num_val=int(num_val),
        image_size=int(image_size),
        seed=int(seed))
    key = json.dumps(
        dict(version=GENERATOR_VERSION, args=args), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return json.dumps(
        dict(version=GENERATOR_VERSION, args=args, hash=digest),
        sort_keys=True) + '\n'


def read_marker(root: Path) -> Optional[str]:
    """The marker text in ``root``, None when there is none."""
    try:
        return (root / MARKER).read_text(encoding='utf-8')
    except OSError:
        return None


def is_demo_data_complete(root: str | os.PathLike = DEMO_ROOT,
                          num_train: int = 400,
                          num_val: int = 100,
                          image_size: int = 160,
                          seed: int = 0) -> bool:
    """Whether ``root`` holds a finished set made with exactly these args."""
    return read_marker(Path(root)) == marker_text(num_train, num_val,
                                                  image_size, seed)


def publish(tmp: Path, root: Path, marker: str, keep_identical: bool) -> None:
    """Atomically move the finished ``tmp`` tree to ``root``.

    With ``keep_identical``, a complete ``root`` with the same marker (e.g.
    published by a concurrent process meanwhile) is kept, so readers of it
    are never disturbed. Otherwise, and for a stale ``root``, the old tree is
    renamed away first (``os.rename`` of a directory cannot overwrite a
    non-empty one) and removed afterwards.
    """
    for attempt in range(10):
        if (keep_identical or attempt > 0) and read_marker(root) == marker:
            shutil.rmtree(tmp, ignore_errors=True)  # a racing twin won
            return
        try:
            os.rename(tmp, root)
            return
        except OSError:
            pass
        if root.exists():
            trash = root.with_name(f'.{root.name}.old-{uuid.uuid4().hex}')
            try:
                os.rename(root, trash)
            except OSError:
                continue  # somebody else moved it; re-check
            shutil.rmtree(trash, ignore_errors=True)
    raise RuntimeError(f'Could not publish demo data to {root}')

