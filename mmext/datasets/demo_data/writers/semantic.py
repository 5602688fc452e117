"""``seg/{split}/NNNNNN.png``: semantic labels (uint8 COCO category id - 1, 255 ignore)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import COCO_CATEGORY_IDS, IGNORE_INDEX, STUFF_CLASSES, THING_CLASSES
from ..encoding import png_bytes
from ..labels import Sample

# label = COCO category id - 1, i.e. the index into SEGMENTATION_METAINFO's classes
_THING_LABELS = np.array([COCO_CATEGORY_IDS[n] - 1 for n in THING_CLASSES])
_STUFF_LABELS = np.array([COCO_CATEGORY_IDS[n] - 1 for n in STUFF_CLASSES])


def semantic_map(sample: Sample) -> np.ndarray:
    """HxW uint8 semantic labels; the void ring around things is ``IGNORE_INDEX``."""
    sem = sample.class_map(_THING_LABELS, _STUFF_LABELS).astype(np.uint8)
    sem[sample.scene['ring']] = IGNORE_INDEX
    return sem


class SemanticWriter:
    """Writes one label PNG per sample; no annotation file."""

    def __init__(self, root: Path, split: str) -> None:
        self.dir = root / 'seg' / split
        self.dir.mkdir(parents=True, exist_ok=True)

    def add(self, sample: Sample) -> None:
        (self.dir / sample.name).write_bytes(png_bytes(semantic_map(sample)))

    def finish(self) -> None:
        """Nothing to write per split."""
