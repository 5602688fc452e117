"""``annotations/panoptic_{split}.json`` + ``panoptic_{split}/NNNNNN.png``: COCO panoptic."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import (COCO_CATEGORY_IDS, PALETTE, STUFF_CLASSES, THING_CLASSES,
                         VOID_ID)
from ..encoding import coco_image, dump_coco, id_to_rgb, png_bytes, segments
from ..labels import Sample

_THING_CATEGORIES = np.array([COCO_CATEGORY_IDS[n] for n in THING_CLASSES])
_STUFF_CATEGORIES = np.array([COCO_CATEGORY_IDS[n] for n in STUFF_CLASSES])


def coco_panoptic_ids(sample: Sample) -> np.ndarray:
    """HxW int64 segment ids: thing ``1000 * category + k``, stuff ``category``,
    the void ring ``VOID_ID``."""
    pan = sample.panoptic_map(_THING_CATEGORIES, _STUFF_CATEGORIES).astype(np.int64)
    pan[sample.scene['ring']] = VOID_ID
    return pan


class CocoPanopticWriter:
    """Writes one id PNG per sample; the JSON with all segments in ``finish``."""

    def __init__(self, root: Path, split: str) -> None:
        self.json_path = root / 'annotations' / f'panoptic_{split}.json'
        self.dir = root / 'annotations' / f'panoptic_{split}'
        self.dir.mkdir(parents=True, exist_ok=True)
        self.images, self.annotations = [], []

    def add(self, sample: Sample) -> None:
        pan = coco_panoptic_ids(sample)
        (self.dir / sample.name).write_bytes(png_bytes(id_to_rgb(pan), rgb=True))
        self.images.append(coco_image(sample))
        self.annotations.append(dict(image_id=sample.image_id, file_name=sample.name,
                                     segments_info=segments(pan)))

    def finish(self) -> None:
        dump_coco(self.json_path, self.images, self.annotations, [
            dict(id=COCO_CATEGORY_IDS[n], name=n,
                 supercategory='shape' if n in THING_CLASSES else 'background',
                 isthing=int(n in THING_CLASSES), color=list(PALETTE[n]))
            for n in THING_CLASSES + STUFF_CLASSES
        ])
