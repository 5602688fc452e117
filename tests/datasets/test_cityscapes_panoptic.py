"""CityscapesPanopticDataset / DemoCityscapesPanopticDataset and the converter tool,
on the demo Cityscapes layout (data/demo/cityscapes)."""
import importlib.util
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmext.datasets.cityscapes_panoptic import (CityscapesPanopticDataset,
                                                default_data_prefix)
from mmext.datasets.demo_data import PANOPTIC_METAINFO, ensure_demo_data
from mmext.utils.errors import UserError
from tests.tool_runner import ROOT, run_tool

DEMO = osp.join(ROOT, 'data', 'demo')
CS = osp.join(DEMO, 'cityscapes')
VAL_JSON = 'gtFine/cityscapes_panoptic_val.json'
CONVERTER = 'tools/dataset_converters/cityscapes_panoptic.py'


@pytest.fixture(scope='module')
def gt() -> dict:
    ensure_demo_data(DEMO, progress=False)
    with open(osp.join(CS, VAL_JSON)) as f:
        return json.load(f)


@pytest.fixture(autouse=True)
def mmdet_scope(fresh_default_scope):
    init_default_scope('mmdet')  # pipelines are built from mmdet's registries


def build(**kwargs):
    from mmdet.registry import DATASETS
    cfg = dict(type='DemoCityscapesPanopticDataset', demo_root=DEMO,
               ann_file=VAL_JSON)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def pan_ids(path: str) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR).astype(np.int64)
    return bgr[..., 2] + 256 * bgr[..., 1] + 65536 * bgr[..., 0]


def test_default_data_prefix():
    assert default_data_prefix('gtFine/cityscapes_panoptic_val.json') == dict(
        img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/')
    assert default_data_prefix('cityscapes_panoptic_train_trainId.json') == dict(
        img='leftImg8bit/train/', seg='cityscapes_panoptic_train_trainId/')
    assert default_data_prefix('gtFine/panoptic.json') is None


def test_demo_val_matches_json(gt):
    ds = build()
    assert len(ds) == len(gt['images']) == 100
    assert ds.data_root == CS
    classes = ds.metainfo['classes']
    assert classes == PANOPTIC_METAINFO['classes']
    cat_name = {c['id']: c['name'] for c in gt['categories']}
    anns = {a['image_id']: a for a in gt['annotations']}
    for i, img in enumerate(gt['images']):
        info = ds.get_data_info(i)
        ann = anns[img['id']]
        assert info['img_id'] == img['id']
        assert info['img_path'] == osp.join(
            CS, 'leftImg8bit', 'val', 'demo', f"{img['id']}_leftImg8bit.png")
        assert osp.isfile(info['img_path']) and osp.isfile(info['seg_map_path'])
        assert osp.basename(info['seg_map_path']) == ann['file_name']
        assert (info['height'], info['width']) == (img['height'], img['width'])
        # every segment kept, labelled by *name* (category ids are sparse and
        # sorted stuff-first, labels are things-first)
        segs = ann['segments_info']
        assert [s['id'] for s in info['segments_info']] == [s['id'] for s in segs]
        for mine, theirs in zip(info['segments_info'], segs):
            assert classes[mine['category']] == cat_name[theirs['category_id']]
            assert mine['is_thing'] == (theirs['id'] >= 1000)
        things = [s for s in segs if s['id'] >= 1000]
        assert len(info['instances']) == len(things)
        for inst, seg in zip(info['instances'], things):
            x, y, w, h = seg['bbox']
            assert inst['bbox'] == [x, y, x + w, y + h]
            assert inst['ignore_flag'] == 0
            assert classes[inst['bbox_label']] == cat_name[seg['category_id']]


def test_pipeline_runs_on_an_item(gt):
    ds = build(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadPanopticAnnotations'),
        dict(type='PackDetInputs'),
    ])
    info = ds.get_data_info(0)
    out = ds[0]
    sample = out['data_samples']
    assert tuple(out['inputs'].shape) == (3, info['height'], info['width'])
    assert sample.img_id == info['img_id']
    assert len(sample.gt_instances) == len(info['instances']) > 0
    assert tuple(sample.gt_instances.masks.masks.shape[1:]) == (
        info['height'], info['width'])
    # semantic map: each segment's pixels carry its label, the rest is 255
    sem = sample.gt_sem_seg.sem_seg[0].numpy()
    ids = pan_ids(info['seg_map_path'])
    expected = np.full_like(ids, 255)
    for seg in info['segments_info']:
        expected[ids == seg['id']] = seg['category']
    np.testing.assert_array_equal(sem, expected)
    assert (sem == 255).any()  # the demo's void ring


def test_filter_empty_gt(gt):
    with_things = {a['image_id'] for a in gt['annotations']
                   if any(s['id'] >= 1000 for s in a['segments_info'])}
    ds = build(filter_cfg=dict(filter_empty_gt=True, min_size=32))
    assert {ds.get_data_info(i)['img_id'] for i in range(len(ds))} == with_things
    # (mmengine cannot serialize an empty data_list)
    assert len(build(filter_cfg=dict(min_size=1000), serialize_data=False)) == 0
    assert len(build(filter_cfg=dict(min_size=1000), test_mode=True)) == 100


def test_explicit_data_prefix_and_classes_subset(gt):
    from mmdet.registry import DATASETS
    meta = dict(classes=('circle', 'sky'), thing_classes=('circle', ),
                stuff_classes=('sky', ), palette=[(1, 2, 3), (4, 5, 6)])
    ds = DATASETS.build(dict(
        type='CityscapesPanopticDataset', data_root=CS, ann_file=VAL_JSON,
        data_prefix=dict(img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/'),
        metainfo=meta))
    cats = {c['name']: c['id'] for c in gt['categories']}
    assert ds.cat_ids == [cats['circle'], cats['sky']]
    wanted = {cats['circle'], cats['sky']}
    for i in range(len(ds)):
        segs = gt['annotations'][i]['segments_info']
        kept = [s['id'] for s in segs if s['category_id'] in wanted]
        assert [s['id'] for s in ds.get_data_info(i)['segments_info']] == kept


@pytest.mark.parametrize('kwargs, match', [
    (dict(metainfo=dict(classes=('car', ), thing_classes=('car', ),
                        stuff_classes=())), r"\['car'\] are not categories"),
    (dict(metainfo=dict(classes=('sky', 'circle'))), 'thing_classes'),
    (dict(metainfo=dict(classes=('sky', ), thing_classes=('sky', ),
                        stuff_classes=())), 'things in one and stuff'),
    (dict(data_prefix=dict(img='leftImg8bit/')), 'image .* not found'),
    (dict(ann_file='gtFine/missing_val.json'), 'data_prefix.img'),
    (dict(ann_file='gtFine/cityscapes_panoptic_nope.json'),
     'not found.*dataset_converters/cityscapes_panoptic.py'),
])
def test_bad_config_raises_user_error(gt, kwargs, match):
    with pytest.raises(UserError, match=match):
        build(**kwargs)


# ----------------------------------------------------------------------
# Converter (tools/dataset_converters/cityscapes_panoptic.py)
# ----------------------------------------------------------------------
def _load_converter():
    spec = importlib.util.spec_from_file_location(
        'cityscapes_panoptic_converter', osp.join(ROOT, CONVERTER))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def converted(gt, tmp_path_factory):
    """The demo's val gtFine copied without its panoptic JSON, then converted."""
    root = tmp_path_factory.mktemp('cityscapes')
    shutil.copytree(osp.join(CS, 'gtFine', 'val'), root / 'gtFine' / 'val')
    os.makedirs(root / 'leftImg8bit')
    os.symlink(osp.join(CS, 'leftImg8bit', 'val'), root / 'leftImg8bit' / 'val')
    paths = _load_converter().convert(str(root), ['val'], quiet=True)
    assert paths == [str(root / 'gtFine' / 'cityscapes_panoptic_val.json')]
    return root


def test_converter_regenerates_the_demo_json(gt, converted):
    with open(converted / VAL_JSON) as f:
        ours = json.load(f)
    assert ours['images'] == gt['images']
    assert ours['annotations'] == gt['annotations']
    # Categories: cityscapesScripts lists its own 19 classes (ids 21-26 are
    # vegetation ... car); the demo JSON names those ids sky ... square.
    theirs = {c['id']: c for c in ours['categories']}
    assert len(theirs) == 19
    for cat in gt['categories']:
        assert theirs[cat['id']]['isthing'] == cat['isthing']
    for ann in gt['annotations'][:10]:
        np.testing.assert_array_equal(
            pan_ids(str(converted / 'gtFine' / 'cityscapes_panoptic_val' /
                        ann['file_name'])),
            pan_ids(osp.join(CS, 'gtFine', 'cityscapes_panoptic_val',
                             ann['file_name'])))


def test_default_metainfo_on_converted_json(gt, converted):
    """The 19 Cityscapes classes; labels follow the names, not the ids."""
    ds = CityscapesPanopticDataset(
        data_root=str(converted), ann_file=VAL_JSON)
    classes = ds.metainfo['classes']
    assert len(classes) == 19 and len(ds.metainfo['thing_classes']) == 8
    assert classes[:2] == ('person', 'rider') and classes[-1] == 'sky'
    assert len(ds) == 100
    names = {c['id']: c['name'] for c in
             json.load(open(converted / VAL_JSON))['categories']}
    info = ds.get_data_info(0)
    assert osp.isfile(info['img_path'])
    for seg in info['segments_info']:
        assert classes[seg['category']] == names[seg['id'] // 1000 or seg['id']]


def test_converter_draws_instance_ids_from_polygons(tmp_path):
    city = tmp_path / 'gtFine' / 'val' / 'aachen'
    city.mkdir(parents=True)
    polygons = dict(imgWidth=40, imgHeight=30, objects=[
        dict(label='road', polygon=[[0, 0], [39, 0], [39, 29], [0, 29]]),
        dict(label='car', polygon=[[5, 5], [15, 5], [15, 15], [5, 15]]),
        dict(label='car', polygon=[[20, 5], [30, 5], [30, 15], [20, 15]]),
    ])
    (city / 'aachen_000000_000019_gtFine_polygons.json').write_text(
        json.dumps(polygons))
    _load_converter().convert(str(tmp_path), ['val'], quiet=True)
    inst = cv2.imread(str(city / 'aachen_000000_000019_gtFine_instanceIds.png'),
                      cv2.IMREAD_UNCHANGED)
    assert set(np.unique(inst).tolist()) == {7, 26000, 26001}
    out = json.loads((tmp_path / VAL_JSON).read_text())
    assert [s['id'] for s in out['annotations'][0]['segments_info']] == [
        7, 26000, 26001]


def test_converter_cli_without_gtfine_fails_in_one_line(tmp_path):
    res = run_tool([CONVERTER, str(tmp_path)])
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('mmext: error:')
    assert f"'{tmp_path}/gtFine' not found" in lines[0]
