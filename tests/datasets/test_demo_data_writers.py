"""Each demo-data writer on a hand-made 8x8 scene: the values in the files it writes.

The scene (``things`` labels: 0 = circle, 2 = square; stuff 0 = sky, 1 = grass)::

    rows 0-3 sky, rows 4-7 grass
    thing 0 circle  rows 1-2, cols 1-2   (4 px)
    thing 1 circle  rows 5-6, cols 4-6   (6 px)
    thing 2 square  rows 5-6, cols 1-2   (4 px)
    void ring at (0, 1) (sky) and (4, 5) (grass)
"""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmext.datasets.demo_data.labels import Sample
from mmext.datasets.demo_data.writers import make_writers

SIZE = 8


def _scene() -> dict:
    stuff = np.zeros((SIZE, SIZE), np.int64)
    stuff[4:] = 1
    owner = np.full((SIZE, SIZE), -1, np.int32)
    owner[1:3, 1:3] = 0
    owner[5:7, 4:7] = 1
    owner[5:7, 1:3] = 2
    ring = np.zeros((SIZE, SIZE), bool)
    ring[0, 1] = ring[4, 5] = True
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    return dict(image=image, stuff=stuff, owner=owner, things=[0, 0, 2], ring=ring)


@pytest.fixture(scope='module')
def root(tmp_path_factory) -> Path:
    """Two samples (ids 1 and 2) of the same scene through every writer, split 'val'."""
    root = tmp_path_factory.mktemp('writers')
    writers = make_writers(root, 'val')
    for image_id in (1, 2):
        sample = Sample(image_id=image_id, scene=_scene())
        for writer in writers:
            writer.add(sample)
    for writer in writers:
        writer.finish()
    return root


def _png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _expected(thing_ids, stuff_ids, ring_value) -> np.ndarray:
    """The scene's map with the given value per thing (0, 1, 2) and stuff class."""
    out = np.where(np.arange(SIZE)[:, None] < 4, stuff_ids[0], stuff_ids[1])
    out = np.broadcast_to(out, (SIZE, SIZE)).copy()
    out[1:3, 1:3], out[5:7, 4:7], out[5:7, 1:3] = thing_ids
    out[0, 1] = out[4, 5] = ring_value
    return out


def test_images(root):
    stored = _png(root / 'images' / 'val' / '000002.png')
    np.testing.assert_array_equal(stored[..., ::-1], _scene()['image'])  # BGR on disk


def test_semantic(root):
    # COCO category id - 1: circle 0, square 2, sky 3, grass 4; ring 255
    sem = _png(root / 'seg' / 'val' / '000001.png')
    assert sem.dtype == np.uint8
    np.testing.assert_array_equal(sem, _expected((0, 0, 2), (3, 4), 255))


def test_coco_instances(root):
    coco = json.loads((root / 'annotations' / 'instances_val.json').read_text())
    assert [c['id'] for c in coco['categories']] == [1, 2, 3]
    assert coco['images'] == [dict(id=i, file_name=f'00000{i}.png', width=SIZE,
                                   height=SIZE) for i in (1, 2)]
    anns = coco['annotations']
    assert [a['id'] for a in anns] == [1, 2, 3, 4, 5, 6]  # numbered across images
    assert [a['image_id'] for a in anns] == [1, 1, 1, 2, 2, 2]
    assert [a['category_id'] for a in anns[:3]] == [1, 1, 3]
    assert [a['bbox'] for a in anns[:3]] == [[1, 1, 2, 2], [4, 5, 3, 2], [1, 5, 2, 2]]
    assert [a['area'] for a in anns[:3]] == [4, 6, 4]
    # polygon through the boundary pixel centres of the 2x2 block at x, y = 1..2
    assert sorted(zip(anns[0]['segmentation'][0][::2],
                      anns[0]['segmentation'][0][1::2])) == [
        (1.5, 1.5), (1.5, 2.5), (2.5, 1.5), (2.5, 2.5)]


def test_coco_panoptic(root):
    bgr = _png(root / 'annotations' / 'panoptic_val' / '000001.png').astype(np.int64)
    ids = bgr[..., 2] + 256 * bgr[..., 1] + 65536 * bgr[..., 0]
    # thing 1000 * category + k (k per class: the two circles 0 and 1), stuff
    # category (sky 4, grass 5), ring void 0; areas: sky 32 - 4 - 1 ring, grass
    # 32 - 6 - 4 - 1 ring
    np.testing.assert_array_equal(ids, _expected((1000, 1001, 3000), (4, 5), 0))
    pan = json.loads((root / 'annotations' / 'panoptic_val.json').read_text())
    segs = pan['annotations'][0]['segments_info']
    assert [(s['id'], s['category_id'], s['area']) for s in segs] == [
        (4, 4, 27), (5, 5, 21), (1000, 1, 4), (1001, 1, 6), (3000, 3, 4)]
    assert segs[3]['bbox'] == [4, 5, 3, 2]
    assert [c['isthing'] for c in pan['categories']] == [1, 1, 1, 0, 0, 0]


def test_cityscapes(root):
    cs = root / 'cityscapes'
    stem = 'demo_000001_000019'
    gt = cs / 'gtFine' / 'val' / 'demo'
    label = _png(gt / f'{stem}_gtFine_labelIds.png')
    inst = _png(gt / f'{stem}_gtFine_instanceIds.png')
    assert (label.dtype, inst.dtype) == (np.uint8, np.uint16)
    # labelIds: circle 24, square 26, sky 21, grass 22, ring 'unlabeled' 0
    np.testing.assert_array_equal(label, _expected((24, 24, 26), (21, 22), 0))
    np.testing.assert_array_equal(inst, _expected((24000, 24001, 26000), (21, 22), 0))
    bgr = _png(cs / 'gtFine' / 'cityscapes_panoptic_val' /
               f'{stem}_gtFine_panoptic.png').astype(np.int64)
    np.testing.assert_array_equal(
        bgr[..., 2] + 256 * bgr[..., 1] + 65536 * bgr[..., 0], inst)
    pan = json.loads((cs / 'gtFine' / 'cityscapes_panoptic_val.json').read_text())
    assert pan['images'][0] == dict(id=stem, file_name=f'{stem}_gtFine_leftImg8bit.png',
                                    width=SIZE, height=SIZE)
    assert [(s['id'], s['category_id']) for s in pan['annotations'][0]['segments_info']] \
        == [(21, 21), (22, 22), (24000, 24), (24001, 24), (26000, 26)]
    # the leftImg8bit image is the COCO-side image, hard-linked where possible
    left = cs / 'leftImg8bit' / 'val' / 'demo' / f'{stem}_leftImg8bit.png'
    coco_img = root / 'images' / 'val' / '000001.png'
    assert left.read_bytes() == coco_img.read_bytes()
    assert os.path.samefile(left, coco_img)


def test_scene_without_things(tmp_path):
    """All-stuff scene: every format is written, with no thing anywhere."""
    scene = dict(_scene(), owner=np.full((SIZE, SIZE), -1, np.int32), things=[],
                 ring=np.zeros((SIZE, SIZE), bool))
    writers = make_writers(tmp_path, 'train')
    for writer in writers:
        writer.add(Sample(image_id=1, scene=scene))
        writer.finish()
    coco = json.loads((tmp_path / 'annotations' / 'instances_train.json').read_text())
    assert coco['annotations'] == []
    seg = _png(tmp_path / 'seg' / 'train' / '000001.png')
    assert sorted(np.unique(seg)) == [3, 4]
