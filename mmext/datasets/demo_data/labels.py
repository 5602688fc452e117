"""Per-pixel truth of a rendered scene, in the terms every label format needs."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .constants import NUM_THINGS


@dataclass
class Sample:
    """One rendered scene with its image id, as handed to every writer.

    ``scene`` is :func:`render_scene`'s dict (``image`` HxWx3 uint8 RGB,
    ``stuff`` / ``owner`` HxW, ``things`` labels bottom to top, ``ring`` HxW bool).
    """
    image_id: int
    scene: dict

    @property
    def size(self) -> int:
        return int(self.scene['image'].shape[0])

    @property
    def name(self) -> str:
        """COCO-side file name, ``NNNNNN.png``."""
        return f'{self.image_id:06d}.png'

    @cached_property
    def labels(self) -> np.ndarray:
        """(N,) int64 thing labels, bottom to top."""
        return np.array(self.scene['things'], np.int64)

    @cached_property
    def is_thing(self) -> np.ndarray:
        """HxW bool: a thing is visible at the pixel."""
        return self.scene['owner'] >= 0

    @cached_property
    def thing_label(self) -> np.ndarray:
        """HxW int64 label of the visible thing (0 where none)."""
        oi = np.where(self.is_thing, self.scene['owner'], 0)
        return self.labels[oi] if len(self.labels) else np.zeros_like(oi)

    @cached_property
    def instance_k(self) -> np.ndarray:
        """HxW int64 per-class instance counter of the visible thing (from 0)."""
        inst_k = np.zeros(len(self.labels), np.int64)
        counts = np.zeros(NUM_THINGS, np.int64)
        for i, lab in enumerate(self.labels):  # Cityscapes convention
            inst_k[i] = counts[lab]
            counts[lab] += 1
        oi = np.where(self.is_thing, self.scene['owner'], 0)
        return inst_k[oi] if len(inst_k) else np.zeros_like(oi)

    def class_map(self, thing_ids: np.ndarray, stuff_ids: np.ndarray) -> np.ndarray:
        """HxW int64 ``thing_ids[label]`` on things, ``stuff_ids[stuff]`` elsewhere."""
        return np.where(self.is_thing, thing_ids[self.thing_label],
                        stuff_ids[self.scene['stuff']])

    def panoptic_map(self, thing_ids: np.ndarray,
                     stuff_ids: np.ndarray) -> np.ndarray:
        """HxW int64 segment ids: thing ``1000 * id + k``, stuff ``id`` (ring kept).

        The convention of COCO panoptic and of Cityscapes' createPanopticImgs.
        """
        return np.where(self.is_thing,
                        thing_ids[self.thing_label] * 1000 + self.instance_k,
                        stuff_ids[self.scene['stuff']])
