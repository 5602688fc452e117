"""One writer per output format of the demo data.

Every writer takes ``(root, split)``, creates its folders, gets each
:class:`~..labels.Sample` through ``add`` and writes its JSON (if any) in ``finish``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Protocol

from ..labels import Sample
from .cityscapes import CityscapesWriter
from .coco_instances import CocoInstancesWriter
from .coco_panoptic import CocoPanopticWriter
from .images import ImageWriter
from .semantic import SemanticWriter

__all__ = ['Writer', 'make_writers', 'ImageWriter', 'CocoInstancesWriter',
           'CocoPanopticWriter', 'SemanticWriter', 'CityscapesWriter']


class Writer(Protocol):
    """What the generator calls on each format's writer."""

    def add(self, sample: Sample) -> None:
        """Write the per-image files of ``sample``; remember its annotations."""

    def finish(self) -> None:
        """Write the split's annotation file(s)."""


def make_writers(root: Path, split: str) -> List[Writer]:
    """All formats of one split, in the order they must see each sample (the
    Cityscapes images are hard links to the COCO-side images written first)."""
    images = ImageWriter(root, split)
    return [images, CocoInstancesWriter(root, split), CocoPanopticWriter(root, split),
            SemanticWriter(root, split), CityscapesWriter(root, split, images.dir)]
