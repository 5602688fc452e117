"""``annotations/instances_{split}.json``: COCO instances of the things (polygons)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import COCO_CATEGORY_IDS, THING_CLASSES
from ..encoding import bbox, coco_image, dump_coco, polygons
from ..labels import Sample

_THING_CATEGORIES = np.array([COCO_CATEGORY_IDS[n] for n in THING_CLASSES])


class CocoInstancesWriter:
    """Collects one annotation per visible thing; writes the JSON in ``finish``."""

    def __init__(self, root: Path, split: str) -> None:
        self.path = root / 'annotations' / f'instances_{split}.json'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.images, self.annotations = [], []

    def add(self, sample: Sample) -> None:
        self.images.append(coco_image(sample))
        for i, lab in enumerate(sample.labels):
            mask = sample.scene['owner'] == i  # the visible part, as in the PNGs
            self.annotations.append(
                dict(
                    id=len(self.annotations) + 1,  # 1.. per split
                    image_id=sample.image_id,
                    category_id=int(_THING_CATEGORIES[lab]),
                    bbox=bbox(mask),
                    area=int(mask.sum()),
                    segmentation=polygons(mask),
                    iscrowd=0))

    def finish(self) -> None:
        dump_coco(self.path, self.images, self.annotations, [
            dict(id=COCO_CATEGORY_IDS[n], name=n, supercategory='shape')
            for n in THING_CLASSES
        ])
