"""SpatialFlow panoptic fusion: instance masks + stuff segmentation -> panoptic map.

Pure torch (CPU or CUDA). The only Python loops run over instances; every
per-pixel step is a tensor operation.

The output uses mmdet 3.x's panoptic encoding (the one ``HeuristicFusionHead``
writes and ``CocoPanopticMetric`` reads):

* thing pixel: ``label + k * INSTANCE_OFFSET`` (``k = 1, 2, ...``),
* stuff pixel: ``num_things + stuff_index`` (no instance offset),
* void pixel:  ``num_things + num_stuff``.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import List, Optional, Tuple

import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from torch import Tensor

# stuff_seg value that is neither a stuff class nor the "things" class.
_IGNORE_INDEX = 255


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
    """Fuse SpatialFlow's instance and stuff predictions into one panoptic map.

    Defaults are the official SpatialFlow thresholds (confidence 0.37,
    overlap 0.37, stuff area limit 4900 px, box fill 0.5).

    Args:
        masks: (N, H, W) bool instance masks at image resolution. N may be 0.
        scores: (N,) floating point instance scores.
        labels: (N,) integer thing class indices in ``[0, num_things)``.
        bboxes: (N, 4) floating point boxes ``x1, y1, x2, y2`` in pixels;
            they may reach outside the image (they are clipped).
        stuff_seg: (H, W) integer argmax of the stuff head: ``[0, num_stuff)``
            are stuff classes, ``num_stuff`` is the merged "things" class,
            ``255`` is ignored.
        num_things: number of thing classes.
        num_stuff: number of stuff classes (without the "things" class).
        score_thr: instances with ``score < score_thr`` are dropped.
        overlap_thr: in ``[0, 1]``; an instance whose mask overlaps already
            pasted instances by more than this fraction of its own area is
            skipped.
        stuff_area_limit: a stuff class needs at least this many unassigned
            pixels to be kept.
        box_fill_thr: in ``[0, 1]``, or None to disable box filling.

    Returns:
        (H, W) int64 panoptic map on ``stuff_seg``'s device, encoded as in
        the module docstring.

    Rules, in order:

    1. Drop instances with ``score < score_thr``.
    2. Paste the rest by descending score (ties keep input order). Skip an
       instance whose mask is empty, whose ``|mask & assigned| / |mask|``
       exceeds ``overlap_thr``, or that has no unassigned pixel left;
       otherwise it gets the still-unassigned pixels of its mask and the next
       ``k``.
    3. Stuff: for each stuff class ``s``, the still-unassigned pixels with
       ``stuff_seg == s`` become stuff ``s`` if there are at least
       ``stuff_area_limit`` of them, else they stay void. The "things" class
       and 255 never become stuff.
    4. Box fill (unless ``box_fill_thr`` is None): for each pasted instance in
       paste order, take its box clipped to the image, rounded outwards
       (``floor`` of x1/y1, ``ceil`` of x2/y2, so every pixel the box touches
       is in it). If the void pixels inside it are at least ``box_fill_thr``
       of that (clipped) box area, they go to the instance.

    Raises:
        TypeError: an argument is not a Tensor / number of the right kind.
        ValueError: shapes, dtypes, devices or values are inconsistent.
    """
    _check_inputs(masks, scores, labels, bboxes, stuff_seg, num_things, num_stuff,
                  score_thr, overlap_thr, stuff_area_limit, box_fill_thr)
    height, width = stuff_seg.shape
    device = stuff_seg.device
    void_id = num_things + num_stuff
    pan = torch.full((height, width), void_id, dtype=torch.long, device=device)
    assigned = torch.zeros((height, width), dtype=torch.bool, device=device)

    # 1. Score threshold.
    keep = scores >= score_thr
    masks, scores, labels, bboxes = masks[keep], scores[keep], labels[keep], bboxes[keep]

    # 2. Paste by descending score; stable so equal scores keep a defined order.
    order = torch.sort(scores, descending=True, stable=True).indices.tolist()
    labels_list = labels.tolist()
    pasted: List[Tuple[int, Tensor]] = []  # (segment id, box) in paste order
    for idx in order:
        mask = masks[idx]
        area = int(mask.sum())
        if area == 0:
            continue
        overlap = int((mask & assigned).sum())
        if overlap / area > overlap_thr:
            continue
        if overlap == area:
            # Only reachable with overlap_thr == 1: nothing left to paste, and
            # giving it an id would leave a gap in k.
            continue
        new = mask & ~assigned
        segment_id = labels_list[idx] + (len(pasted) + 1) * INSTANCE_OFFSET
        pan[new] = segment_id
        assigned |= new
        pasted.append((segment_id, bboxes[idx]))

    # 3. Stuff, counted on unassigned pixels only (instances win over stuff).
    seg = stuff_seg.long()
    if num_stuff > 0:
        candidate = (seg < num_stuff) & ~assigned  # excludes "things" and 255
        counts = torch.bincount(seg[candidate], minlength=num_stuff)
        big_enough = counts >= stuff_area_limit
        # clamp only makes the gather in-range; non-candidates are masked out.
        take = candidate & big_enough[seg.clamp(max=num_stuff - 1)]
        pan = torch.where(take, seg + num_things, pan)
        assigned |= take

    # 4. Box fill of void pixels.
    if box_fill_thr is not None:
        for segment_id, box in pasted:
            x1, y1, x2, y2 = box.tolist()
            # Outward rounding, then clip to the image.
            x1 = min(max(math.floor(x1), 0), width)
            y1 = min(max(math.floor(y1), 0), height)
            x2 = min(max(math.ceil(x2), 0), width)
            y2 = min(max(math.ceil(y2), 0), height)
            box_area = (x2 - x1) * (y2 - y1)
            if box_area == 0:  # box entirely outside the image or degenerate
                continue
            void = ~assigned[y1:y2, x1:x2]
            num_void = int(void.sum())
            if num_void == 0 or num_void / box_area < box_fill_thr:
                continue
            # Slices are views: these writes land in pan / assigned.
            pan[y1:y2, x1:x2][void] = segment_id
            assigned[y1:y2, x1:x2] |= void
    return pan


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_integer_dtype(t: Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def _check_inputs(masks, scores, labels, bboxes, stuff_seg, num_things, num_stuff,
                  score_thr, overlap_thr, stuff_area_limit, box_fill_thr) -> None:
    """Raise early, with the problem and the fix, on anything malformed."""
    for name, value in (('masks', masks), ('scores', scores), ('labels', labels),
                        ('bboxes', bboxes), ('stuff_seg', stuff_seg)):
        if not isinstance(value, Tensor):
            raise TypeError(f'spatialflow_fusion: {name} must be a torch.Tensor, '
                            f'got {type(value).__name__}')
    for name, value in (('num_things', num_things), ('num_stuff', num_stuff),
                        ('stuff_area_limit', stuff_area_limit)):
        if not _is_int(value):
            raise TypeError(f'spatialflow_fusion: {name} must be an int, '
                            f'got {type(value).__name__}')
        if value < 0:
            raise ValueError(f'spatialflow_fusion: {name} must be >= 0, got {value}')
    for name, value in (('score_thr', score_thr), ('overlap_thr', overlap_thr)):
        if not _is_real(value):
            raise TypeError(f'spatialflow_fusion: {name} must be a float, '
                            f'got {type(value).__name__}')
    if box_fill_thr is not None and not _is_real(box_fill_thr):
        raise TypeError(f'spatialflow_fusion: box_fill_thr must be a float or None, '
                        f'got {type(box_fill_thr).__name__}')
    if not 0 <= overlap_thr <= 1:
        raise ValueError(f'spatialflow_fusion: overlap_thr is a fraction of the mask '
                         f'area and must be in [0, 1], got {overlap_thr}')
    if box_fill_thr is not None and not 0 <= box_fill_thr <= 1:
        raise ValueError(f'spatialflow_fusion: box_fill_thr is a fraction of the box '
                         f'area and must be in [0, 1] (or None to disable), '
                         f'got {box_fill_thr}')
    if num_stuff >= _IGNORE_INDEX:
        raise ValueError(f'spatialflow_fusion: num_stuff={num_stuff} collides with the '
                         f'ignore value {_IGNORE_INDEX} in stuff_seg; it must be < '
                         f'{_IGNORE_INDEX}')
    if num_things + num_stuff >= INSTANCE_OFFSET:
        # The void id and stuff ids must stay below INSTANCE_OFFSET to decode.
        raise ValueError(f'spatialflow_fusion: num_things + num_stuff must be < '
                         f'INSTANCE_OFFSET={INSTANCE_OFFSET}, got '
                         f'{num_things} + {num_stuff}')

    # Shapes.
    if stuff_seg.dim() != 2:
        raise ValueError(f'spatialflow_fusion: stuff_seg must be (H, W) (the argmax of '
                         f'the stuff head, one image), got shape {tuple(stuff_seg.shape)}')
    if masks.dim() != 3:
        raise ValueError(f'spatialflow_fusion: masks must be (N, H, W), got shape '
                         f'{tuple(masks.shape)}; for no detections pass an (0, H, W) '
                         f'tensor')
    num = masks.shape[0]
    if tuple(masks.shape[1:]) != tuple(stuff_seg.shape):
        raise ValueError(f'spatialflow_fusion: masks are {tuple(masks.shape[1:])} per '
                         f'instance but stuff_seg is {tuple(stuff_seg.shape)}; resize '
                         f'both to the image resolution first')
    if tuple(scores.shape) != (num, ):
        raise ValueError(f'spatialflow_fusion: scores must be (N,) = ({num},) to match '
                         f'masks, got shape {tuple(scores.shape)}')
    if tuple(labels.shape) != (num, ):
        raise ValueError(f'spatialflow_fusion: labels must be (N,) = ({num},) to match '
                         f'masks, got shape {tuple(labels.shape)}')
    if tuple(bboxes.shape) != (num, 4):
        raise ValueError(f'spatialflow_fusion: bboxes must be (N, 4) = ({num}, 4) to '
                         f'match masks, got shape {tuple(bboxes.shape)}')

    # Devices.
    devices = {t.device for t in (masks, scores, labels, bboxes, stuff_seg)}
    if len(devices) > 1:
        raise ValueError(f'spatialflow_fusion: all tensors must be on one device, got '
                         f'{sorted(str(d) for d in devices)}; move them with .to()')

    # Dtypes.
    if masks.dtype != torch.bool:
        raise ValueError(f'spatialflow_fusion: masks must be bool, got {masks.dtype}; '
                         f'threshold mask probabilities first (e.g. masks > 0.5)')
    if not scores.dtype.is_floating_point:
        raise ValueError(f'spatialflow_fusion: scores must be floating point, got '
                         f'{scores.dtype}')
    if not bboxes.dtype.is_floating_point:
        raise ValueError(f'spatialflow_fusion: bboxes must be floating point, got '
                         f'{bboxes.dtype}; use bboxes.float()')
    if not _is_integer_dtype(labels):
        raise ValueError(f'spatialflow_fusion: labels must be an integer tensor, got '
                         f'{labels.dtype}; use labels.long()')
    if not _is_integer_dtype(stuff_seg):
        raise ValueError(f'spatialflow_fusion: stuff_seg must be an integer tensor '
                         f'(class indices, the argmax of the stuff logits), got '
                         f'{stuff_seg.dtype}')

    # Values.
    if num > 0:
        if not bool(torch.isfinite(scores).all()):
            raise ValueError('spatialflow_fusion: scores contain NaN or inf')
        if not bool(torch.isfinite(bboxes).all()):
            raise ValueError('spatialflow_fusion: bboxes contain NaN or inf')
        bad = (bboxes[:, 2] < bboxes[:, 0]) | (bboxes[:, 3] < bboxes[:, 1])
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f'spatialflow_fusion: bboxes[{i}] = {bboxes[i].tolist()} '
                             f'has x2 < x1 or y2 < y1; boxes must be x1, y1, x2, y2 '
                             f'(not x, y, w, h)')
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_things:
            raise ValueError(f'spatialflow_fusion: labels must be thing indices in '
                             f'[0, num_things={num_things}), got values in '
                             f'[{low}, {high}]')
    if stuff_seg.numel() > 0:
        seg = stuff_seg.long()
        valid = ((seg >= 0) & (seg <= num_stuff)) | (seg == _IGNORE_INDEX)
        if not bool(valid.all()):
            bad_values = torch.unique(seg[~valid])[:5].tolist()
            raise ValueError(f'spatialflow_fusion: stuff_seg values must be stuff '
                             f'classes [0, {num_stuff}), the "things" class {num_stuff} '
                             f'or {_IGNORE_INDEX}, got e.g. {bad_values}; is num_stuff '
                             f'right and is stuff_seg the argmax of num_stuff + 1 '
                             f'channels?')
