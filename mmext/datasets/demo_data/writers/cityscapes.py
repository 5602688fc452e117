"""``cityscapes/``: leftImg8bit images, gtFine labelIds / instanceIds, and the
panoptic JSON + PNGs that cityscapesscripts' ``createPanopticImgs`` makes of them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import (CITYSCAPES_CATEGORIES, CITYSCAPES_CITY, CITYSCAPES_FRAME,
                         CITYSCAPES_LABEL_IDS, STUFF_CLASSES, THING_CLASSES)
from ..encoding import dump_json, id_to_rgb, link_or_copy, png_bytes, segments
from ..labels import Sample

_THING_LABEL_IDS = np.array([CITYSCAPES_LABEL_IDS[n] for n in THING_CLASSES])
_STUFF_LABEL_IDS = np.array([CITYSCAPES_LABEL_IDS[n] for n in STUFF_CLASSES])


def cityscapes_maps(sample: Sample):
    """(labelIds HxW uint8, instanceIds HxW uint16); the void ring is 'unlabeled'.

    instanceIds: thing ``labelId * 1000 + k``, stuff ``labelId`` (as gtFine).
    """
    label = sample.class_map(_THING_LABEL_IDS, _STUFF_LABEL_IDS).astype(np.uint8)
    label[sample.scene['ring']] = CITYSCAPES_LABEL_IDS['unlabeled']
    inst = sample.panoptic_map(_THING_LABEL_IDS, _STUFF_LABEL_IDS)
    inst[sample.scene['ring']] = CITYSCAPES_LABEL_IDS['unlabeled']  # never a thing
    return label, inst.astype(np.uint16)


class CityscapesWriter:
    """Writes the Cityscapes layout; images are hard links into ``images_dir``."""

    def __init__(self, root: Path, split: str, images_dir: Path) -> None:
        cs = root / 'cityscapes'
        self.images_dir = images_dir
        self.img_dir = cs / 'leftImg8bit' / split / CITYSCAPES_CITY
        self.gt_dir = cs / 'gtFine' / split / CITYSCAPES_CITY
        self.pan_dir = cs / 'gtFine' / f'cityscapes_panoptic_{split}'
        self.json_path = cs / 'gtFine' / f'cityscapes_panoptic_{split}.json'
        for d in (self.img_dir, self.gt_dir, self.pan_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.images, self.annotations = [], []

    def add(self, sample: Sample) -> None:
        stem = f'{CITYSCAPES_CITY}_{sample.image_id:06d}_{CITYSCAPES_FRAME}'
        label, inst = cityscapes_maps(sample)
        link_or_copy(self.images_dir / sample.name,
                     self.img_dir / f'{stem}_leftImg8bit.png')
        (self.gt_dir / f'{stem}_gtFine_labelIds.png').write_bytes(png_bytes(label))
        (self.gt_dir / f'{stem}_gtFine_instanceIds.png').write_bytes(png_bytes(inst))
        (self.pan_dir / f'{stem}_gtFine_panoptic.png').write_bytes(
            png_bytes(id_to_rgb(inst), rgb=True))
        # Verbatim createPanopticImgs quirk: it names the image
        # '*_gtFine_leftImg8bit.png', which does not exist; loaders
        # (e.g. detectron2's) derive the image path from the id.
        self.images.append(dict(id=stem, file_name=f'{stem}_gtFine_leftImg8bit.png',
                                width=sample.size, height=sample.size))
        self.annotations.append(dict(image_id=stem,
                                     file_name=f'{stem}_gtFine_panoptic.png',
                                     segments_info=segments(inst)))

    def finish(self) -> None:
        dump_json(self.json_path, dict(images=self.images, annotations=self.annotations,
                                       categories=CITYSCAPES_CATEGORIES))
