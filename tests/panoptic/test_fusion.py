"""spatialflow_fusion: each rule on hand-made 20x20 images, encoding, bad input."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET

from mmext.panoptic.fusion import spatialflow_fusion

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
                     shape=(H, W)) -> None:
    """Every pixel is void, an encoded stuff id or an encoded thing id."""
    assert pan.dtype == torch.int64
    assert tuple(pan.shape) == tuple(shape)
    void = pan == num_things + num_stuff
    stuff = (pan >= num_things) & (pan < num_things + num_stuff)
    thing = (pan >= INSTANCE_OFFSET) & (pan % INSTANCE_OFFSET < num_things)
    assert bool((void | stuff | thing).all()), torch.unique(pan).tolist()
    # Thing instance numbers are 1..K without gaps, one label each.
    ks = torch.unique(pan[thing] // INSTANCE_OFFSET).tolist()
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


def test_empty_mask_and_fully_covered_mask_get_no_id():
    first = rect(0, 10, 0, 10)
    empty = torch.zeros(H, W, dtype=torch.bool)
    inside = rect(2, 4, 2, 4)                        # fully covered by first
    last = rect(15, 20, 15, 20)
    pan = fuse([first, empty, inside, last], [0.9, 0.8, 0.7, 0.6], [0, 1, 2, 1],
               boxes=[[0, 0, 10, 10], [0, 0, 1, 1], [2, 2, 4, 4], [15, 15, 20, 20]],
               overlap_thr=1.0)
    assert_valid_map(pan)  # ks stay contiguous
    assert bool((pan[last] == thing_id(1, 2)).all())


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


def test_box_fill_rounds_outwards_and_clips_to_the_image():
    mask = rect(5, 7, 0, 3)
    # x: floor(-3.5)=-4 -> 0 .. ceil(2.2)=3; y: floor(4.5)=4 .. ceil(25.0)=25 -> 20.
    pan = fuse([mask], [0.9], [0], boxes=[[-3.5, 4.5, 2.2, 25.0]], box_fill_thr=0.5)
    assert_valid_map(pan)
    assert bool((pan[rect(4, 20, 0, 3)] == thing_id(0, 1)).all())
    assert int((pan == thing_id(0, 1)).sum()) == 16 * 3
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

def reference_fusion(masks, scores, labels, bboxes, seg, num_things, num_stuff,
                     score_thr, overlap_thr, stuff_area_limit, box_fill_thr):
    """The rules written out pixel by pixel in plain Python (slow, small images)."""
    h, w = len(seg), len(seg[0])
    void = num_things + num_stuff
    pan = [[void] * w for _ in range(h)]
    taken = [[False] * w for _ in range(h)]
    order = sorted((i for i in range(len(scores)) if scores[i] >= score_thr),
                   key=lambda i: -scores[i])
    pasted = []
    for i in order:
        pix = [(y, x) for y in range(h) for x in range(w) if masks[i][y][x]]
        if not pix:
            continue
        inter = sum(taken[y][x] for y, x in pix)
        if inter / len(pix) > overlap_thr or inter == len(pix):
            continue
        sid = labels[i] + (len(pasted) + 1) * INSTANCE_OFFSET
        for y, x in pix:
            if not taken[y][x]:
                pan[y][x], taken[y][x] = sid, True
        pasted.append((sid, bboxes[i]))
    for s in range(num_stuff):
        pix = [(y, x) for y in range(h) for x in range(w)
               if seg[y][x] == s and not taken[y][x]]
        if pix and len(pix) >= stuff_area_limit:
            for y, x in pix:
                pan[y][x], taken[y][x] = num_things + s, True
    if box_fill_thr is not None:
        for sid, (x1, y1, x2, y2) in pasted:
            xs = range(max(math.floor(x1), 0), min(math.ceil(x2), w))
            ys = range(max(math.floor(y1), 0), min(math.ceil(y2), h))
            pix = [(y, x) for y in ys for x in xs]
            free = [(y, x) for y, x in pix if not taken[y][x]]
            if free and len(free) / len(pix) >= box_fill_thr:
                for y, x in free:
                    pan[y][x], taken[y][x] = sid, True
    return torch.tensor(pan, dtype=torch.long)


@pytest.mark.parametrize('seed', range(8))
def test_matches_pixel_by_pixel_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    h, w, n = 16, 14, 7
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    boxes = torch.zeros(n, 4)
    for i in range(n):
        x1, y1 = torch.randint(-3, w - 2, (2, ), generator=gen).tolist()
        bw, bh = torch.randint(2, 9, (2, ), generator=gen).tolist()
        blob = torch.rand(h, w, generator=gen) < 0.7
        masks[i, max(y1, 0):y1 + bh, max(x1, 0):x1 + bw] = blob[max(y1, 0):y1 + bh,
                                                                max(x1, 0):x1 + bw]
        boxes[i] = torch.tensor([x1 - 0.3, y1 + 0.4, x1 + bw + 0.6, y1 + bh - 0.2])
    scores = torch.rand(n, generator=gen)
    labels = torch.randint(0, NT, (n, ), generator=gen)
    # Half "things", so some stuff classes fall under the limit and boxes find void.
    seg = torch.tensor([0, 1, THINGS, THINGS])[torch.randint(0, 4, (h, w), generator=gen)]
    seg[torch.rand(h, w, generator=gen) < 0.1] = 255
    # Over these seeds: instances dropped, skipped for overlap, stuff kept and
    # dropped, box fill applied and refused all occur.
    kwargs = dict(score_thr=0.2, overlap_thr=0.37, stuff_area_limit=40, box_fill_thr=0.5)
    got = spatialflow_fusion(masks, scores, labels, boxes, seg, NT, NS, **kwargs)
    want = reference_fusion(masks.tolist(), scores.tolist(), labels.tolist(), boxes.tolist(),
                            seg.tolist(), NT, NS, **kwargs)
    assert_valid_map(got, shape=(h, w))
    assert torch.equal(got, want)


# ---------------------------------------------------------------- bad input

def _good():
    return dict(masks=rect(0, 5, 0, 5)[None], scores=torch.tensor([0.9]),
                labels=torch.tensor([1]), bboxes=torch.tensor([[0., 0., 5., 5.]]),
                stuff_seg=torch.full((H, W), THINGS), num_things=NT, num_stuff=NS)


@pytest.mark.parametrize('change, match', [
    (dict(scores=torch.tensor([0.9, 0.8])), r'scores must be \(N,\) = \(1,\)'),
    (dict(labels=torch.tensor([1, 1])), r'labels must be \(N,\) = \(1,\)'),
    (dict(bboxes=torch.zeros(2, 4)), r'bboxes must be \(N, 4\) = \(1, 4\)'),
    (dict(bboxes=torch.zeros(1, 5)), r'bboxes must be \(N, 4\)'),
    (dict(masks=rect(0, 5, 0, 5)[None].to(torch.uint8)), 'masks must be bool.*masks > 0.5'),
    (dict(masks=rect(0, 5, 0, 5)[None].float()), 'masks must be bool'),
    (dict(masks=rect(0, 5, 0, 5)), r'masks must be \(N, H, W\)'),
    (dict(stuff_seg=torch.full((H, W + 1), THINGS)), r'stuff_seg is \(20, 21\)'),
    (dict(stuff_seg=torch.full((1, H, W), THINGS)), r'stuff_seg must be \(H, W\)'),
    (dict(stuff_seg=torch.zeros(H, W)), 'stuff_seg must be an integer tensor'),
    (dict(stuff_seg=torch.full((H, W), NS + 1)), r'stuff_seg values .* got e.g. \[3\]'),
    (dict(labels=torch.tensor([NT])), r'labels must be thing indices in \[0, num_things=3\)'),
    (dict(labels=torch.tensor([-1])), 'labels must be thing indices'),
    (dict(labels=torch.tensor([1.0])), 'labels must be an integer tensor'),
    (dict(scores=torch.tensor([1])), 'scores must be floating point'),
    (dict(scores=torch.tensor([float('nan')])), 'scores contain NaN'),
    (dict(bboxes=torch.tensor([[0., 0., 5., 5.]]).long()), 'bboxes must be floating point'),
    (dict(bboxes=torch.tensor([[4., 0., 3., 5.]])), r'x2 < x1.*\(not x, y, w, h\)'),
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
