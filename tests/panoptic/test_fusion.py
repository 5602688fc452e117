"""spatialflow_fusion: each rule on hand-made 20x20 images, the official combine step
on random scenes, encoding, bad input."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET

from mmext.panoptic.fusion import SpatialFlowFusion, spatialflow_fusion

H = W = 20
NT, NS = 3, 2          # thing / stuff class counts
THINGS = NS            # stuff_seg value of the merged "things" class
VOID = NT + NS


def rect(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    """(H, W) bool mask of rows [y0, y1) and columns [x0, x1)."""
    m = torch.zeros(H, W, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def fuse(masks: Sequence[torch.Tensor], scores: Sequence[float], labels: Sequence[int],
         boxes: Optional[Sequence[Sequence[float]]] = None,
         stuff_seg: Optional[torch.Tensor] = None, **kwargs) -> torch.Tensor:
    """Call the fusion with list inputs; boxes default to each mask's tight box."""
    if boxes is None:
        boxes = []
        for m in masks:
            ys, xs = m.nonzero(as_tuple=True)
            boxes.append([xs.min().item(), ys.min().item(),
                          xs.max().item() + 1, ys.max().item() + 1])
    if stuff_seg is None:
        stuff_seg = torch.full((H, W), THINGS, dtype=torch.long)
    kwargs.setdefault('box_fill_thr', None)  # isolate the rule under test
    kwargs.setdefault('stuff_area_limit', 10)
    return spatialflow_fusion(
        torch.stack(list(masks)) if masks else torch.zeros(0, H, W, dtype=torch.bool),
        torch.tensor(scores, dtype=torch.float32),
        torch.tensor(labels, dtype=torch.long),
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        stuff_seg, NT, NS, **kwargs)


def thing_id(label: int, k: int) -> int:
    return label + k * INSTANCE_OFFSET


def assert_valid_map(pan: torch.Tensor, num_things: int = NT, num_stuff: int = NS,
                     shape=(H, W), contiguous: bool = True) -> None:
    """Every pixel is void, an encoded stuff id or an encoded thing id."""
    assert pan.dtype == torch.int64
    assert tuple(pan.shape) == tuple(shape)
    void = pan == num_things + num_stuff
    stuff = (pan >= num_things) & (pan < num_things + num_stuff)
    thing = (pan >= INSTANCE_OFFSET) & (pan % INSTANCE_OFFSET < num_things)
    assert bool((void | stuff | thing).all()), torch.unique(pan).tolist()
    # Thing instance numbers are 1..K without gaps (a gap only comes from a mask
    # that passes the overlap test but adds no pixel: overlap_thr=1), one label each.
    ks = torch.unique(pan[thing] // INSTANCE_OFFSET).tolist()
    if contiguous:
        assert ks == list(range(1, len(ks) + 1))
    for k in ks:
        sel = thing & (pan // INSTANCE_OFFSET == k)
        assert torch.unique(pan[sel]).numel() == 1


# ---------------------------------------------------------------- 1. score threshold

def test_score_threshold_just_below_dropped_just_above_kept():
    a, b, c = rect(0, 5, 0, 5), rect(10, 15, 10, 15), rect(0, 5, 10, 15)
    pan = fuse([a, b, c], [0.369, 0.371, 0.37], [0, 1, 2])
    assert_valid_map(pan)
    assert bool((pan[a] == VOID).all())  # below 0.37: gone
    # 0.371 pasted first (k=1), then exactly 0.37 (kept: only score < thr drops).
    assert bool((pan[b] == thing_id(1, 1)).all())
    assert bool((pan[c] == thing_id(2, 2)).all())


def test_score_threshold_is_a_parameter():
    a = rect(0, 5, 0, 5)
    assert bool((fuse([a], [0.3], [0])[a] == VOID).all())
    assert bool((fuse([a], [0.3], [0], score_thr=0.25)[a] == thing_id(0, 1)).all())


# ---------------------------------------------------------------- 2. overlap rule

def test_overlap_above_threshold_is_skipped():
    first = rect(0, 10, 0, 10)                       # 100 px, score 0.9
    second = rect(5, 15, 0, 10)                      # 100 px, 50 overlap -> 0.5 > 0.37
    # Lower score given first: order must come from scores, not input order.
    pan = fuse([second, first], [0.8, 0.9], [1, 0])
    assert_valid_map(pan)
    assert bool((pan[first] == thing_id(0, 1)).all())
    assert bool((pan[rect(10, 15, 0, 10)] == VOID).all())
    assert int((pan >= 2 * INSTANCE_OFFSET).sum()) == 0  # no second instance


def test_overlap_below_threshold_pastes_remaining_pixels_only():
    first = rect(0, 10, 0, 10)
    second = rect(8, 18, 0, 10)                      # 20 px overlap -> 0.2 <= 0.37
    pan = fuse([second, first], [0.8, 0.9], [1, 0])
    assert_valid_map(pan)
    assert bool((pan[first] == thing_id(0, 1)).all())  # overlap stays with the first
    assert bool((pan[rect(10, 18, 0, 10)] == thing_id(1, 2)).all())
    assert int((pan == thing_id(1, 2)).sum()) == 80


def test_overlap_exactly_at_threshold_is_pasted():
    first = rect(0, 10, 0, 10)
    second = rect(5, 15, 0, 10)                      # ratio exactly 0.5
    pan = fuse([first, second], [0.9, 0.8], [0, 1], overlap_thr=0.5)
    assert int((pan == thing_id(1, 2)).sum()) == 50
    pan = fuse([first, second], [0.9, 0.8], [0, 1], overlap_thr=0.49)
    assert int((pan == thing_id(1, 2)).sum()) == 0


def test_empty_mask_gets_no_id_fully_covered_mask_does():
    """As the official code: an empty mask is skipped; with overlap_thr=1 a fully
    covered mask passes the overlap test and takes an id (with no pixel)."""
    first = rect(0, 10, 0, 10)
    empty = torch.zeros(H, W, dtype=torch.bool)
    inside = rect(2, 4, 2, 4)                        # fully covered by first
    last = rect(15, 20, 15, 20)
    pan = fuse([first, empty, inside, last], [0.9, 0.8, 0.7, 0.6], [0, 1, 2, 1],
               boxes=[[0, 0, 10, 10], [0, 0, 1, 1], [2, 2, 4, 4], [15, 15, 20, 20]],
               overlap_thr=1.0)
    assert_valid_map(pan, contiguous=False)
    assert bool((pan[first] == thing_id(0, 1)).all())
    assert int((pan // INSTANCE_OFFSET == 2).sum()) == 0   # "inside": k=2, no pixel
    assert bool((pan[last] == thing_id(1, 3)).all())


# ---------------------------------------------------------------- 3. stuff

def test_stuff_area_limit():
    seg = torch.full((H, W), THINGS, dtype=torch.long)
    seg[0:4, 0:5] = 0          # 20 px of stuff 0
    seg[10:13, 0:10] = 1       # 30 px of stuff 1
    pan = fuse([], [], [], stuff_seg=seg, stuff_area_limit=21)
    assert_valid_map(pan)
    assert bool((pan[seg == 0] == VOID).all())       # 20 < 21
    assert bool((pan[seg == 1] == NT + 1).all())     # 30 >= 21
    pan = fuse([], [], [], stuff_seg=seg, stuff_area_limit=20)
    assert bool((pan[seg == 0] == NT + 0).all())     # exactly at the limit: kept
    pan = fuse([], [], [], stuff_seg=seg, stuff_area_limit=31)
    assert bool((pan == VOID).all())


def test_things_class_and_ignore_never_become_stuff():
    seg = torch.full((H, W), THINGS, dtype=torch.long)
    seg[:, :5] = 255
    pan = fuse([], [], [], stuff_seg=seg, stuff_area_limit=0)
    assert bool((pan == VOID).all())
    # They stay void, hence free for box filling even with no area limit.
    mask = rect(0, 2, 0, 10)
    pan = fuse([mask], [0.9], [1], boxes=[[0, 0, 10, 10]], stuff_seg=seg,
               stuff_area_limit=0, box_fill_thr=0.5)
    assert int((pan == thing_id(1, 1)).sum()) == 100


def test_pixels_taken_by_instances_do_not_count_toward_stuff():
    seg = torch.full((H, W), THINGS, dtype=torch.long)
    seg[0:3, 0:10] = 1                               # 30 px of stuff 1
    inst = rect(0, 3, 0, 5)                          # takes 15 of them
    pan = fuse([], [], [], stuff_seg=seg, stuff_area_limit=20)
    assert int((pan == NT + 1).sum()) == 30          # alone: stuff
    pan = fuse([inst], [0.9], [2], stuff_seg=seg, stuff_area_limit=20)
    assert_valid_map(pan)
    assert bool((pan[inst] == thing_id(2, 1)).all())  # instance wins over stuff
    assert bool((pan[rect(0, 3, 5, 10)] == VOID).all())  # 15 left < 20
    pan = fuse([inst], [0.9], [2], stuff_seg=seg, stuff_area_limit=15)
    assert bool((pan[rect(0, 3, 5, 10)] == NT + 1).all())


def test_skipped_instance_does_not_hide_stuff():
    seg = torch.full((H, W), 0, dtype=torch.long)
    low = rect(0, 10, 0, 10)
    pan = fuse([low], [0.1], [0], stuff_seg=seg, stuff_area_limit=H * W)
    assert bool((pan == NT).all())


# ---------------------------------------------------------------- 4. box fill

def _box_fill_case(stuff_rows: int):
    """Box rows/cols [0, 10) (100 px); mask = rows [0, 2) (20 px);
    stuff 0 covers rows [2, 2 + stuff_rows) of the box plus a big strip outside it."""
    seg = torch.full((H, W), THINGS, dtype=torch.long)
    seg[2:2 + stuff_rows, 0:10] = 0
    seg[15:20, :] = 0                                # keeps stuff 0 above the limit
    mask = rect(0, 2, 0, 10)
    return mask, seg


def test_box_fill_when_at_least_half_the_box_is_void():
    mask, seg = _box_fill_case(stuff_rows=3)         # void in box: 100-20-30 = 50
    pan = fuse([mask], [0.9], [1], boxes=[[0, 0, 10, 10]], stuff_seg=seg,
               box_fill_thr=0.5)
    assert_valid_map(pan)
    box = rect(0, 10, 0, 10)
    assert int((pan == thing_id(1, 1)).sum()) == 70  # mask + the 50 void pixels
    assert bool((pan[box & (seg == 0)] == NT).all())  # stuff inside the box stays
    assert bool((pan[~box & (seg == THINGS)] == VOID).all())  # nothing outside the box


def test_box_fill_not_when_less_than_half_is_void():
    mask, seg = _box_fill_case(stuff_rows=4)         # void in box: 40 < 50
    pan = fuse([mask], [0.9], [1], boxes=[[0, 0, 10, 10]], stuff_seg=seg,
               box_fill_thr=0.5)
    assert int((pan == thing_id(1, 1)).sum()) == 20
    assert int((pan[rect(0, 10, 0, 10)] == VOID).sum()) == 40


def test_box_fill_disabled_with_none():
    mask, seg = _box_fill_case(stuff_rows=0)         # 80 void pixels in the box
    pan = fuse([mask], [0.9], [1], boxes=[[0, 0, 10, 10]], stuff_seg=seg,
               box_fill_thr=None)
    assert int((pan == thing_id(1, 1)).sum()) == 20
    pan = fuse([mask], [0.9], [1], boxes=[[0, 0, 10, 10]], stuff_seg=seg,
               box_fill_thr=0.5)
    assert int((pan == thing_id(1, 1)).sum()) == 100


def test_box_fill_is_on_by_default():
    mask = rect(0, 2, 0, 10)
    pan = spatialflow_fusion(mask[None], torch.tensor([0.9]), torch.tensor([1]),
                             torch.tensor([[0., 0., 10., 10.]]),
                             torch.full((H, W), THINGS), NT, NS)
    assert int((pan == thing_id(1, 1)).sum()) == 100


def test_box_fill_truncates_with_int_and_clips_to_the_image():
    mask = rect(5, 7, 0, 3)
    # Official [int(x), int(y), int(x + w), int(y + h)]: x 0.7 -> 0 .. 2.9 -> 2,
    # y 4.5 -> 4 .. 25.0 -> 25, clipped to 20 (numpy slicing).
    pan = fuse([mask], [0.9], [0], boxes=[[0.7, 4.5, 2.9, 25.0]], box_fill_thr=0.5)
    assert_valid_map(pan)
    assert bool((pan[rect(4, 20, 0, 2)] == thing_id(0, 1)).all())
    assert int((pan == thing_id(0, 1)).sum()) == 16 * 2 + 2  # + the mask's column 2
    # A box entirely outside the image: nothing to fill, no error.
    pan = fuse([mask], [0.9], [0], boxes=[[30., 30., 40., 40.]], box_fill_thr=0.5)
    assert int((pan == thing_id(0, 1)).sum()) == 6


def test_box_fill_in_paste_order():
    a, b = rect(0, 2, 0, 2), rect(8, 10, 8, 10)
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10]]         # same box for both
    pan = fuse([b, a], [0.5, 0.9], [2, 1], boxes=boxes, box_fill_thr=0.5)
    assert_valid_map(pan)
    # a (higher score, pasted first) takes the 92 void pixels of the box; b keeps its mask.
    assert int((pan == thing_id(1, 1)).sum()) == 96
    assert bool((pan[b] == thing_id(2, 2)).all())


# ---------------------------------------------------------------- degenerate images

@pytest.mark.parametrize('case', ['only_stuff', 'no_stuff', 'nothing', 'no_stuff_classes'])
def test_degenerate_images_give_a_valid_map(case):
    num_stuff = 0 if case == 'no_stuff_classes' else NS
    seg = torch.full((H, W), num_stuff, dtype=torch.long)  # all "things" class
    masks = torch.zeros(0, H, W, dtype=torch.bool)
    scores, labels, boxes = torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros(0, 4)
    if case == 'only_stuff':
        seg[:10] = 0
        seg[10:] = 1
    if case in ('no_stuff', 'no_stuff_classes'):
        masks = torch.stack([rect(0, 5, 0, 5), rect(10, 20, 10, 20)])
        scores, labels = torch.tensor([0.9, 0.5]), torch.tensor([0, 2])
        boxes = torch.tensor([[0., 0., 5., 5.], [10., 10., 20., 20.]])
    pan = spatialflow_fusion(masks, scores, labels, boxes, seg, NT, num_stuff,
                             stuff_area_limit=10)
    assert_valid_map(pan, num_stuff=num_stuff)
    if case == 'only_stuff':
        assert bool((pan[:10] == NT).all()) and bool((pan[10:] == NT + 1).all())
    elif case == 'nothing':
        assert bool((pan == VOID).all())
    else:
        assert int((pan >= INSTANCE_OFFSET).sum()) == 25 + 100
        assert bool((pan[pan < INSTANCE_OFFSET] == NT + num_stuff).all())


def test_all_below_score_threshold_is_all_void():
    pan = fuse([rect(0, 5, 0, 5)], [0.1], [0], box_fill_thr=0.5)
    assert_valid_map(pan)
    assert bool((pan == VOID).all())


def test_uint8_stuff_seg_with_ignore_is_accepted():
    seg = torch.full((H, W), 255, dtype=torch.uint8)
    seg[:10] = 1
    pan = fuse([], [], [], stuff_seg=seg)
    assert_valid_map(pan)
    assert bool((pan[:10] == NT + 1).all()) and bool((pan[10:] == VOID).all())


# ---------------------------------------------------------------- encoding

def test_encoding_decodes_to_label_and_paste_order():
    seg = torch.full((H, W), THINGS, dtype=torch.long)
    seg[15:, :] = 1
    masks = [rect(0, 4, 0, 4), rect(0, 4, 6, 10), rect(6, 10, 0, 4), rect(6, 10, 6, 10)]
    scores = [0.5, 0.95, 0.7, 0.6]
    labels = [2, 0, 2, 1]
    pan = fuse(masks, scores, labels, stuff_seg=seg)
    assert_valid_map(pan)
    assert INSTANCE_OFFSET == 1000
    # Paste order = descending score: inputs 1, 2, 3, 0 get k = 1, 2, 3, 4.
    for k, i in enumerate([1, 2, 3, 0], start=1):
        ids = torch.unique(pan[masks[i]])
        assert ids.tolist() == [thing_id(labels[i], k)]
        assert int(ids // INSTANCE_OFFSET) == k and int(ids % INSTANCE_OFFSET) == labels[i]
    stuff = pan[seg == 1]
    assert bool(((stuff >= NT) & (stuff < NT + NS)).all())
    assert bool((stuff == NT + 1).all())


# ---------------------------------------------------------------- cross-check

def official_combine(masks, scores, labels, boxes, stuff_map, num_things, num_stuff,
                     score_thr, overlap_thr, stuff_area_limit, box_fill_thr):
    """The official combine step, written out from ``combine_panoptic_predictions``
    + ``combine_to_panoptic`` (chensnathan/SpatialFlow
    mmdet/core/post_processing/combine_panoptic.py, ``using_bbox=True`` unless
    ``box_fill_thr`` is None) and the JSON conversion in front of it
    (mmdet/datasets/coco.py ``xyxy2xywh`` / ``_panoptic2json``), in numpy.

    Returns (pan, categories): (H, W) official segment ids (0 = void) and
    id -> category (thing label, or num_things + stuff index).
    """
    h, w = stuff_map.shape
    dets = []
    for i in range(len(scores)):
        x1, y1, x2, y2 = np.asarray(boxes[i], dtype=np.float32).tolist()
        dets.append(dict(score=float(np.float32(scores[i])), category_id=int(labels[i]),
                         segmentation=np.asarray(masks[i], dtype=bool),
                         bbox=[x1, y1, x2 - x1, y2 - y1]))
    # Filtered by confidence, sorted by -score (Python's stable sort), once for
    # the instance list and once for the box list.
    inst = sorted((d for d in dets if not d['score'] < score_thr),
                  key=lambda el: -el['score'])
    bbox = [dict(d) for d in inst]
    # Stuff "annotations": one per stuff label present; things / 255 skipped.
    sem = [dict(category_id=num_things + int(j), segmentation=stuff_map == j)
           for j in np.unique(stuff_map) if j < num_stuff]

    categories = {}

    def get_id(category_id):
        new_id = len(categories) + 1
        categories[new_id] = category_id
        return new_id

    pan = np.zeros((h, w), dtype=np.uint32)
    used = None
    for ann_id, ann in enumerate(inst):
        area = ann['segmentation'].sum()
        if area == 0:
            continue
        if used is None:
            intersect = 0
            used = ann['segmentation'].copy()
        else:
            intersect = np.logical_and(used, ann['segmentation']).sum()
        if intersect / area > overlap_thr:
            continue
        used = np.logical_or(used, ann['segmentation'])
        mask = ann['segmentation']
        if intersect != 0:
            mask = np.logical_and(pan == 0, mask)
        segment_id = get_id(ann['category_id'])
        pan[mask] = segment_id
        bbox[ann_id]['segment_id'] = segment_id
    for ann in sem:
        mask_left = np.logical_and(pan == 0, ann['segmentation'])
        if mask_left.sum() < stuff_area_limit:
            continue
        pan[mask_left] = get_id(ann['category_id'])
    if box_fill_thr is not None:
        for ann in bbox:
            b = [int(ann['bbox'][0]), int(ann['bbox'][1]),
                 int(ann['bbox'][0] + ann['bbox'][2]),
                 int(ann['bbox'][1] + ann['bbox'][3])]
            mask = np.zeros((h, w), dtype=np.uint8)
            mask[b[1]:b[3], b[0]:b[2]] = 1
            mask_left = np.logical_and(pan == 0, mask == 1)
            with np.errstate(invalid='ignore'):
                overlap = mask_left.sum() / mask.sum()  # nan for an empty box
            if overlap < box_fill_thr:
                continue
            generated_id = get_id(ann['category_id'])
            pan[mask_left] = ann.get('segment_id', generated_id)
    return pan, categories


def assert_same_panoptic(ours: torch.Tensor, official: np.ndarray, categories: dict,
                         num_things: int, num_stuff: int) -> None:
    """Same segments (pixel sets) with the same categories; ids may differ."""
    ours = ours.numpy().astype(np.int64)
    void = num_things + num_stuff
    ours_cat = np.where(ours >= INSTANCE_OFFSET, ours % INSTANCE_OFFSET, ours)
    ours_cat = np.where(ours == void, -1, ours_cat)
    theirs_cat = np.vectorize(lambda i: categories.get(int(i), -1))(official)
    np.testing.assert_array_equal(ours_cat, theirs_cat)
    pairs = np.unique(np.stack([ours.ravel(), official.astype(np.int64).ravel()]), axis=1)
    # A one-to-one map between our ids and the official ones.
    assert len(np.unique(pairs[0])) == pairs.shape[1]
    assert len(np.unique(pairs[1])) == pairs.shape[1]


def _random_scene(gen: torch.Generator, h: int, w: int):
    n = int(torch.randint(0, 12, (1, ), generator=gen))
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    boxes = torch.zeros(n, 4)
    for i in range(n):
        x1 = float(torch.randint(0, w, (1, ), generator=gen))
        y1 = float(torch.randint(0, h, (1, ), generator=gen))
        bw, bh = (torch.rand(2, generator=gen) * 12 + 0.5).tolist()
        # Fractional and whole-pixel corners; some boxes reach past the image.
        jitter = torch.rand(4, generator=gen) * (torch.rand(4, generator=gen) < 0.6)
        box = torch.tensor([x1, y1, x1 + bw, y1 + bh]) + jitter
        boxes[i] = box
        x0, y0 = int(box[0]), int(box[1])
        blob = torch.rand(h, w, generator=gen) < float(torch.rand(1, generator=gen))
        masks[i, y0:int(box[3]) + 1, x0:int(box[2]) + 1] = blob[y0:int(box[3]) + 1,
                                                                   x0:int(box[2]) + 1]
    # Scores from a few values: ties and scores at the threshold occur.
    scores = torch.tensor([0.2, 0.37, 0.5, 0.8, 0.9])[
        torch.randint(0, 5, (n, ), generator=gen)] + (
            torch.rand(n, generator=gen) < 0.5) * torch.rand(n, generator=gen) * 0.1
    labels = torch.randint(0, NT, (n, ), generator=gen)
    seg = torch.randint(0, NS + 1, (h, w), generator=gen)
    # Stuff regions as blocks, so that some pass the area limit and some do not.
    seg = seg[:, :1].repeat(1, w) if bool(torch.rand(1, generator=gen) < 0.3) else seg
    return masks, scores, labels, boxes, seg


def test_matches_the_official_combine_step_on_random_scenes():
    gen = torch.Generator().manual_seed(0)
    seen = dict(pasted=0, rejected_then_filled=0, pasted_then_filled=0, stuff=0)
    for scene in range(400):
        h, w = int(torch.randint(6, 24, (1, ), generator=gen)), int(
            torch.randint(6, 24, (1, ), generator=gen))
        masks, scores, labels, boxes, seg = _random_scene(gen, h, w)
        cfg = dict(
            score_thr=[0.37, 0.0, 0.5, 0.9][scene % 4],
            overlap_thr=[0.37, 0.0, 1.0, 0.5, float(torch.rand(1, generator=gen))][
                scene % 5],
            stuff_area_limit=[0, 5, 20, 40][scene % 4],
            box_fill_thr=[0.5, None, 0.0, 1.0, 0.3][scene % 5])
        ours = spatialflow_fusion(masks, scores, labels, boxes, seg, NT, NS, **cfg)
        official, categories = official_combine(masks.numpy(), scores.numpy(),
                                                 labels.numpy(), boxes.numpy(),
                                                 seg.numpy(), NT, NS, **cfg)
        assert_same_panoptic(ours, official, categories, NT, NS)
        # Coverage of the rules over the scenes (counted on our output).
        ks = ours[ours >= INSTANCE_OFFSET]
        seen['pasted'] += int(ks.unique().numel())
        seen['stuff'] += int(((ours >= NT) & (ours < NT + NS)).sum() > 0)
        if cfg['box_fill_thr'] is not None:
            no_fill = spatialflow_fusion(masks, scores, labels, boxes, seg, NT, NS,
                                         **dict(cfg, box_fill_thr=None))
            grown = set(ks.unique().tolist()) - set(no_fill.unique().tolist())
            seen['rejected_then_filled'] += len(grown)
            seen['pasted_then_filled'] += int(((ours != no_fill)
                                               & torch.isin(ours, no_fill.unique())
                                               ).sum() > 0)
    assert min(seen.values()) >= 20, seen


def test_box_of_a_rejected_mask_becomes_a_new_segment_of_its_class():
    first = rect(0, 10, 0, 10)
    covered = rect(0, 10, 0, 10)                     # rejected: overlap 1.0 > 0.37
    boxes = [[0., 0., 10., 10.], [0., 10., 10.9, 19.9]]
    pan = fuse([first, covered], [0.9, 0.8], [0, 2], boxes=boxes, box_fill_thr=0.5)
    assert bool((pan[first] == thing_id(0, 1)).all())
    # Its box rows [10, 19), cols [0, 10) (int() truncation) are void: a new segment.
    assert bool((pan[rect(10, 19, 0, 10)] == thing_id(2, 2)).all())
    assert int((pan == thing_id(2, 2)).sum()) == 90


def test_per_image_call_syncs_only_where_the_algorithm_decides(monkeypatch):
    """Device->host copies: one table copy, one per kept mask, one per kept box;
    the stuff step and the configuration checks add none."""
    seg = torch.zeros(H, W, dtype=torch.long)
    masks = torch.stack([rect(0, 5, 0, 5), rect(10, 15, 10, 15)])
    args = (masks, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]),
            torch.tensor([[0., 0., 5., 5.], [10., 10., 15., 15.]]), seg)
    fusion = SpatialFlowFusion(NT, NS, stuff_area_limit=10, box_fill_thr=0.5)
    calls = []
    for name in ('__int__', 'tolist', 'item', '__bool__', '__float__', 'nonzero'):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda t, *a, _r=real, _n=name, **k:
                            calls.append(_n) or _r(t, *a, **k))
    pan = fusion(*args)
    monkeypatch.undo()
    assert sorted(calls) == ['__int__'] * 4 + ['tolist'], calls
    assert bool((pan[masks[0]] == thing_id(0, 1)).all())


# ---------------------------------------------------------------- bad input

def _good():
    return dict(masks=rect(0, 5, 0, 5)[None], scores=torch.tensor([0.9]),
                labels=torch.tensor([1]), bboxes=torch.tensor([[0., 0., 5., 5.]]),
                stuff_seg=torch.full((H, W), THINGS), num_things=NT, num_stuff=NS)


@pytest.mark.parametrize('change, match', [
    (dict(scores=torch.tensor([0.9, 0.8])), r'scores \(N,\), labels .* N=1'),
    (dict(labels=torch.tensor([1, 1])), r'must match the N=1 masks'),
    (dict(bboxes=torch.zeros(1, 5)), r'must match the N=1 masks'),
    (dict(masks=rect(0, 5, 0, 5)[None].to(torch.uint8)), 'masks must be bool'),
    (dict(masks=rect(0, 5, 0, 5)), r'masks must be \(N, H, W\)'),
    (dict(stuff_seg=torch.full((H, W + 1), THINGS)), r'\(H, W\) = stuff_seg\'s \(20, 21\)'),
    (dict(stuff_seg=torch.full((1, H, W), THINGS)), r'stuff_seg must be \(H, W\)'),
    (dict(stuff_seg=torch.zeros(H, W)), 'stuff_seg must be an integer tensor'),
    (dict(labels=torch.tensor([1.0])), 'labels must be an integer tensor'),
    (dict(scores=torch.tensor([1])), 'scores and bboxes must be floating point'),
    (dict(overlap_thr=37), r'overlap_thr .* \[0, 1\]'),
    (dict(box_fill_thr=1.5), r'box_fill_thr .* \[0, 1\]'),
    (dict(stuff_area_limit=-1), 'stuff_area_limit must be >= 0'),
    (dict(num_stuff=255), 'collides with the ignore value'),
    (dict(num_things=990, num_stuff=10), 'INSTANCE_OFFSET'),
])
def test_bad_input_raises_value_error(change, match):
    args = _good()
    args.update(change)
    with pytest.raises(ValueError, match=match):
        spatialflow_fusion(**args)


@pytest.mark.parametrize('change, match', [
    (dict(masks=rect(0, 5, 0, 5)[None].numpy()), 'masks must be a torch.Tensor'),
    (dict(num_things=3.0), 'num_things must be an int'),
    (dict(stuff_area_limit=True), 'stuff_area_limit must be an int'),
    (dict(score_thr='0.37'), 'score_thr must be a float'),
    (dict(box_fill_thr='none'), 'box_fill_thr must be a float or None'),
])
def test_wrong_types_raise_type_error(change, match):
    args = _good()
    args.update(change)
    with pytest.raises(TypeError, match=match):
        spatialflow_fusion(**args)


def test_configuration_is_checked_once_at_construction():
    with pytest.raises(ValueError, match='overlap_thr'):
        SpatialFlowFusion(NT, NS, overlap_thr=2.0)
    fusion = SpatialFlowFusion(NT, NS, stuff_area_limit=10, box_fill_thr=None)
    args = _good()
    pan = fusion(args['masks'], args['scores'], args['labels'], args['bboxes'],
                 args['stuff_seg'])
    assert bool((pan[args['masks'][0]] == thing_id(1, 1)).all())


def test_inputs_are_not_modified():
    args = _good()
    before = {k: v.clone() for k, v in args.items() if isinstance(v, torch.Tensor)}
    spatialflow_fusion(**args)
    for k, v in before.items():
        assert torch.equal(args[k], v), k


# ---------------------------------------------------------------- CUDA

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(0)
    masks = torch.rand(8, H, W, generator=gen) < 0.3
    scores = torch.rand(8, generator=gen)
    labels = torch.randint(0, NT, (8, ), generator=gen)
    xy = torch.randint(-2, W, (8, 2), generator=gen).float()
    boxes = torch.cat([xy, xy + 6.5], dim=1)
    seg = torch.randint(0, NS + 1, (H, W), generator=gen)
    args = (masks, scores, labels, boxes, seg, NT, NS)
    kwargs = dict(score_thr=0.2, stuff_area_limit=20)
    cpu = spatialflow_fusion(*args, **kwargs)
    gpu = spatialflow_fusion(*[a.cuda() if isinstance(a, torch.Tensor) else a for a in args],
                             **kwargs)
    assert gpu.device.type == 'cuda'
    assert torch.equal(gpu.cpu(), cpu)
