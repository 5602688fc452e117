"""SpatialFlow panoptic fusion: instance masks + stuff segmentation -> panoptic map.

The combine step of the official code (``combine_to_panoptic`` in
``mmdet/core/post_processing/combine_panoptic.py`` of chensnathan/SpatialFlow, run
with ``using_bbox=True``), in torch on the model's device and without its JSON / RLE
round trip. The output uses mmdet 3.x's panoptic encoding (the one
``HeuristicFusionHead`` writes and ``CocoPanopticMetric`` reads):

* thing pixel: ``label + k * INSTANCE_OFFSET`` (``k = 1, 2, ...``),
* stuff pixel: ``num_things + stuff_index`` (no instance offset),
* void pixel:  ``num_things + num_stuff``.

The configuration is checked once, when :class:`SpatialFlowFusion` is built. Per image
only tensor metadata (shapes, dtypes, devices) is checked; values are not, because
checking them needs device->host copies on every image and the detector produces
them in range by construction (labels from a ``num_things`` head, ``stuff_seg`` the
argmax of ``num_stuff + 1`` logits). Device->host copies per image: one for the
per-instance scalars, one per kept instance (its overlap decides whether it is pasted)
and one per box above the score threshold (its void fraction decides the fill).
"""
from __future__ import annotations

from numbers import Real
from typing import List, Optional

import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from torch import Tensor

# stuff_seg value that is neither a stuff class nor the "things" class.
_IGNORE_INDEX = 255


class SpatialFlowFusion:
    """The official SpatialFlow combine step with a fixed, validated configuration.

    Args:
        num_things: number of thing classes.
        num_stuff: number of stuff classes (without the merged "things" class).
        score_thr: instances (and their boxes) with ``score < score_thr`` are
            dropped (official ``confidence_thr`` 0.37).
        overlap_thr: in ``[0, 1]``; an instance whose mask overlaps the masks
            pasted before it by more than this fraction of its area is not
            pasted (official ``overlap_thr`` 0.37).
        stuff_area_limit: a stuff class needs at least this many unassigned
            pixels (official 4900).
        box_fill_thr: in ``[0, 1]``, or None for the official ``using_bbox=False``
            (official ``bbox_overlap_thr`` 0.5 with ``using_bbox=True``).

    Raises:
        TypeError / ValueError: at construction, naming the bad setting.

    Rules, in order (each one as ``combine_to_panoptic``):

    1. Instances with ``score < score_thr`` are dropped; the rest are visited by
       descending score (ties keep the input order: Python's stable sort).
    2. Paste: an instance with an empty mask, or with
       ``|mask & pasted| / |mask| > overlap_thr``, is rejected; otherwise it gets
       the next ``k`` and the not yet pasted pixels of its mask.
    3. Stuff: the still unassigned pixels with ``stuff_seg == s`` become stuff ``s``
       when there are at least ``stuff_area_limit`` of them. The "things" class
       (``num_stuff``) and 255 never become stuff.
    4. Box fill (unless ``box_fill_thr`` is None): for EVERY instance of step 1, in
       the same order, its box is cut to integers with ``int()`` (truncation, as the
       official ``int(x)``, ``int(x + w)``), clipped to the image; when at least
       ``box_fill_thr`` of the box's pixels are still void, those pixels go to the
       instance's segment if it was pasted, else to a new segment of its class
       (next ``k``).
    """

    def __init__(self,
                 num_things: int,
                 num_stuff: int,
                 score_thr: float = 0.37,
                 overlap_thr: float = 0.37,
                 stuff_area_limit: int = 4900,
                 box_fill_thr: Optional[float] = 0.5) -> None:
        for name, value in (('num_things', num_things), ('num_stuff', num_stuff),
                            ('stuff_area_limit', stuff_area_limit)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f'spatialflow fusion: {name} must be an int, '
                                f'got {type(value).__name__}')
            if value < 0:
                raise ValueError(f'spatialflow fusion: {name} must be >= 0, got {value}')
        for name, value in (('score_thr', score_thr), ('overlap_thr', overlap_thr),
                            ('box_fill_thr', box_fill_thr)):
            if value is None and name == 'box_fill_thr':
                continue
            if not isinstance(value, Real) or isinstance(value, bool):
                raise TypeError(f'spatialflow fusion: {name} must be a float'
                                + (' or None' if name == 'box_fill_thr' else '')
                                + f', got {type(value).__name__}')
        if not 0 <= overlap_thr <= 1:
            raise ValueError('spatialflow fusion: overlap_thr is a fraction of the mask '
                             f'area and must be in [0, 1], got {overlap_thr}')
        if box_fill_thr is not None and not 0 <= box_fill_thr <= 1:
            raise ValueError('spatialflow fusion: box_fill_thr is a fraction of the box '
                             'area and must be in [0, 1] (or None to disable), got '
                             f'{box_fill_thr}')
        if num_stuff >= _IGNORE_INDEX:
            raise ValueError(f'spatialflow fusion: num_stuff={num_stuff} collides with '
                             f'the ignore value {_IGNORE_INDEX} in stuff_seg; it must '
                             f'be < {_IGNORE_INDEX}')
        if num_things + num_stuff >= INSTANCE_OFFSET:
            # The void id and stuff ids must stay below INSTANCE_OFFSET to decode.
            raise ValueError('spatialflow fusion: num_things + num_stuff must be < '
                             f'INSTANCE_OFFSET={INSTANCE_OFFSET}, got {num_things} + '
                             f'{num_stuff}')
        self.num_things = num_things
        self.num_stuff = num_stuff
        self.score_thr = float(score_thr)
        self.overlap_thr = float(overlap_thr)
        self.stuff_area_limit = stuff_area_limit
        self.box_fill_thr = None if box_fill_thr is None else float(box_fill_thr)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_things={self.num_things}, '
                f'num_stuff={self.num_stuff}, score_thr={self.score_thr}, '
                f'overlap_thr={self.overlap_thr}, stuff_area_limit='
                f'{self.stuff_area_limit}, box_fill_thr={self.box_fill_thr})')

    def __call__(self, masks: Tensor, scores: Tensor, labels: Tensor, bboxes: Tensor,
                 stuff_seg: Tensor) -> Tensor:
        """Fuse one image.

        Args:
            masks: (N, H, W) bool instance masks at image resolution; N may be 0.
            scores: (N,) floating point scores.
            labels: (N,) integer thing classes in ``[0, num_things)``.
            bboxes: (N, 4) floating point ``x1, y1, x2, y2`` in pixels of the same
                image, ``x1, y1 >= 0`` (mmdet clips predicted boxes to the image).
            stuff_seg: (H, W) integer stuff labels: ``[0, num_stuff)`` stuff,
                ``num_stuff`` the "things" class, 255 ignored.

        Returns:
            (H, W) int64 panoptic map on ``stuff_seg``'s device (module docstring).
        """
        _check_metadata(masks, scores, labels, bboxes, stuff_seg)
        height, width = stuff_seg.shape
        device = stuff_seg.device
        void_id = self.num_things + self.num_stuff
        pan = torch.full((height, width), void_id, dtype=torch.long, device=device)
        assigned = torch.zeros((height, width), dtype=torch.bool, device=device)

        # One device->host copy for every per-instance scalar. float64 holds the
        # float32 scores / boxes and the integer labels / areas exactly.
        num = masks.shape[0]
        areas = masks.flatten(1).sum(dim=1)
        table = torch.cat([scores[:, None].double(), labels[:, None].double(),
                           bboxes.double(), areas[:, None].double()], dim=1).tolist()
        # 1. Score threshold and descending score, stable as Python's sorted().
        order = sorted((i for i in range(num) if table[i][0] >= self.score_thr),
                       key=lambda i: -table[i][0])

        # 2. Paste masks.
        segment_of: List[Optional[int]] = [None] * num
        next_k = 1
        for i in order:
            area = table[i][6]
            if area == 0:
                continue
            mask = masks[i]
            overlap = int((mask & assigned).sum())  # the decision needs this value
            if overlap / area > self.overlap_thr:
                continue
            segment_of[i] = int(table[i][1]) + next_k * INSTANCE_OFFSET
            next_k += 1
            new = mask & ~assigned
            pan = torch.where(new, segment_of[i], pan)
            assigned |= new

        # 3. Stuff, counted on unassigned pixels only (instances win over stuff).
        if self.num_stuff > 0:
            seg = stuff_seg.long()
            candidate = (seg < self.num_stuff) & (seg >= 0) & ~assigned
            index = torch.where(candidate, seg, self.num_stuff).reshape(-1)
            # scatter_add instead of bincount: no device->host copy on CUDA.
            counts = torch.zeros(self.num_stuff + 1, dtype=torch.long,
                                 device=device).scatter_add_(
                                     0, index, torch.ones_like(index))
            big_enough = counts >= self.stuff_area_limit
            big_enough[self.num_stuff] = False
            take = candidate & big_enough[index.reshape(height, width)]
            pan = torch.where(take, seg + self.num_things, pan)
            assigned |= take

        # 4. Box fill of void pixels, for every box above the score threshold.
        if self.box_fill_thr is not None:
            for i in order:
                x1, y1, x2, y2 = table[i][2:6]
                # The official code cuts [int(x), int(y), int(x + w), int(y + h)]
                # of the xywh box; its numpy slice clips the far ends to the image.
                left, top = max(int(x1), 0), max(int(y1), 0)
                right = min(int(x1 + (x2 - x1)), width)
                bottom = min(int(y1 + (y2 - y1)), height)
                box_area = (right - left) * (bottom - top)
                if right <= left or bottom <= top:
                    continue  # empty box: the official fill writes no pixel
                void = ~assigned[top:bottom, left:right]
                if int(void.sum()) / box_area < self.box_fill_thr:
                    continue
                if segment_of[i] is None:  # mask rejected: a new segment
                    segment_of[i] = int(table[i][1]) + next_k * INSTANCE_OFFSET
                    next_k += 1
                region = pan[top:bottom, left:right]  # a view: writes land in pan
                region.copy_(torch.where(void, segment_of[i], region))
                assigned[top:bottom, left:right] |= void
        return pan


def _check_metadata(masks: Tensor, scores: Tensor, labels: Tensor, bboxes: Tensor,
                    stuff_seg: Tensor) -> None:
    """Shapes, dtypes and devices (tensor metadata: no device->host copy)."""
    tensors = dict(masks=masks, scores=scores, labels=labels, bboxes=bboxes,
                   stuff_seg=stuff_seg)
    for name, value in tensors.items():
        if not isinstance(value, Tensor):
            raise TypeError(f'spatialflow fusion: {name} must be a torch.Tensor, got '
                            f'{type(value).__name__}')
    num = masks.shape[0] if masks.dim() == 3 else -1
    problems = []
    if stuff_seg.dim() != 2:
        problems.append(f'stuff_seg must be (H, W), got {tuple(stuff_seg.shape)}')
    if masks.dim() != 3 or masks.shape[1:] != stuff_seg.shape[-2:]:
        problems.append(f'masks must be (N, H, W) with (H, W) = stuff_seg\'s '
                        f'{tuple(stuff_seg.shape[-2:])}, got {tuple(masks.shape)}')
    if scores.shape != (num, ) or labels.shape != (num, ) or bboxes.shape != (num, 4):
        problems.append(f'scores (N,), labels (N,) and bboxes (N, 4) must match the '
                        f'N={num} masks, got {tuple(scores.shape)}, '
                        f'{tuple(labels.shape)}, {tuple(bboxes.shape)}')
    if masks.dtype != torch.bool:
        problems.append(f'masks must be bool (threshold the mask probabilities), got '
                        f'{masks.dtype}')
    if not (scores.dtype.is_floating_point and bboxes.dtype.is_floating_point):
        problems.append(f'scores and bboxes must be floating point, got '
                        f'{scores.dtype}, {bboxes.dtype}')
    for name in ('labels', 'stuff_seg'):
        dtype = tensors[name].dtype
        if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
            problems.append(f'{name} must be an integer tensor, got {dtype}')
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        problems.append(f'all tensors must be on one device, got '
                        f'{sorted(str(d) for d in devices)}')
    if problems:
        raise ValueError('spatialflow fusion: ' + '; '.join(problems) + '.')


def spatialflow_fusion(masks: Tensor,
                       scores: Tensor,
                       labels: Tensor,
                       bboxes: Tensor,
                       stuff_seg: Tensor,
                       num_things: int,
                       num_stuff: int,
                       score_thr: float = 0.37,
                       overlap_thr: float = 0.37,
                       stuff_area_limit: int = 4900,
                       box_fill_thr: Optional[float] = 0.5) -> Tensor:
    """One-call form of :class:`SpatialFlowFusion` (see there for the arguments
    and rules); code that fuses many images should build the class once."""
    return SpatialFlowFusion(num_things, num_stuff, score_thr, overlap_thr,
                             stuff_area_limit, box_fill_thr)(masks, scores, labels,
                                                             bboxes, stuff_seg)
