"""CityscapesPanopticMetric on the demo Cityscapes val split, with the ground truth
fed back as mmdet-encoded panoptic predictions."""
import json
import os.path as osp
from typing import Dict, List, Optional

import cv2
import numpy as np
import pytest
import torch

from mmext.datasets.demo_data import ensure_demo_data
from mmext.utils.errors import UserError
from tests.tool_runner import ROOT

DEMO = osp.join(ROOT, 'data', 'demo')
CS = osp.join(DEMO, 'cityscapes')
VAL_JSON = 'gtFine/cityscapes_panoptic_val.json'
KEYS = ['PQ', 'SQ', 'RQ', 'PQ_th', 'SQ_th', 'RQ_th', 'PQ_st', 'SQ_st', 'RQ_st']


@pytest.fixture(scope='module')
def dataset():
    from mmext.datasets import DemoCityscapesPanopticDataset
    ensure_demo_data(DEMO, progress=False)
    return DemoCityscapesPanopticDataset(demo_root=DEMO, ann_file=VAL_JSON)


@pytest.fixture(scope='module')
def gt(dataset) -> dict:
    with open(osp.join(CS, VAL_JSON)) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def gt_samples(dataset, gt) -> List[dict]:
    """Every val image's GT as an mmdet prediction data sample (dict form).

    Built from the JSON and the class names alone (not from the dataset's
    parsing), so that the metric's label -> category mapping is tested."""
    classes = dataset.metainfo['classes']
    cats = {c['id']: c for c in gt['categories']}
    images = {im['id']: im for im in gt['images']}
    samples = []
    for ann in gt['annotations']:
        img = images[ann['image_id']]
        path = osp.join(CS, 'gtFine', 'cityscapes_panoptic_val', ann['file_name'])
        samples.append(gt_as_prediction(path, ann['segments_info'], cats, classes))
        samples[-1].update(
            img_id=img['id'],
            img_path=osp.join(CS, 'leftImg8bit', 'val', 'demo',
                              f"{img['id']}_leftImg8bit.png"))
    return samples


def gt_as_prediction(png: str, segments: List[dict], cats: Dict[int, dict],
                     classes: tuple) -> dict:
    """GT PNG -> ``pred_panoptic_seg.sem_seg`` (1, H, W): label + k * 1000 for
    the k-th segment if a thing (k >= 1), label for stuff, void =
    ``len(classes)``; label = index of the category's name in ``classes``."""
    bgr = cv2.imread(png, cv2.IMREAD_COLOR).astype(np.int64)
    ids = bgr[..., 2] + 256 * bgr[..., 1] + 65536 * bgr[..., 0]
    pan = np.full(ids.shape, len(classes), np.int64)
    for k, seg in enumerate(segments, 1):
        cat = cats[seg['category_id']]
        label = classes.index(cat['name'])
        pan[ids == seg['id']] = label + (k * 1000 if cat['isthing'] else 0)
    return dict(pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None]),
                ori_shape=pan.shape)


def make_metric(dataset, **kwargs):
    from mmdet.registry import METRICS
    cfg = dict(type='CityscapesPanopticMetric', data_root=CS, gt_json=VAL_JSON)
    cfg.update(kwargs)
    metric = METRICS.build(cfg)
    metric.dataset_meta = dataset.metainfo
    return metric


def evaluate(metric, samples: List[dict]) -> Dict[str, float]:
    for i in range(0, len(samples), 8):  # batches of 8, as a val loop would
        metric.process({}, samples[i:i + 8])
    out = metric.evaluate(len(samples))
    return {k.split('/')[-1]: v for k, v in out.items()}


def without_segment(sample: dict, value: int, void: int) -> dict:
    """``sample`` with the pixels of panoptic value ``value`` set to void."""
    pan = sample['pred_panoptic_seg']['sem_seg'].clone()
    assert (pan == value).any()
    pan[pan == value] = void
    return dict(sample, pred_panoptic_seg=dict(sem_seg=pan))


def test_ground_truth_scores_100(dataset, gt_samples, capfd):
    out = evaluate(make_metric(dataset), gt_samples)
    assert sorted(out) == sorted(KEYS)
    for key in KEYS:
        assert out[key] == pytest.approx(100.0), key
    printed = capfd.readouterr()
    assert 'Core:' not in printed.out + printed.err  # cityscapesScripts' progress


@pytest.mark.parametrize('nproc', [1, 2])
def test_one_removed_thing_lowers_pq_exactly(dataset, gt, gt_samples, nproc):
    classes = dataset.metainfo['classes']
    num_classes, num_things = len(classes), len(dataset.metainfo['thing_classes'])
    cats = {c['id']: c for c in gt['categories']}
    segs = gt['annotations'][0]['segments_info']
    k, thing = next((k, s) for k, s in enumerate(segs, 1)
                    if cats[s['category_id']]['isthing'])
    label = classes.index(cats[thing['category_id']]['name'])
    samples = list(gt_samples)
    samples[0] = without_segment(samples[0], label + k * 1000, num_classes)
    out = evaluate(make_metric(dataset, nproc=nproc), samples)
    assert out['PQ'] < 100.0 and out['PQ_th'] < 100.0
    assert out['PQ_st'] == pytest.approx(100.0)
    assert out['SQ'] == pytest.approx(100.0)  # matched segments are perfect
    # the class of the removed segment: TP = n - 1, FN = 1 -> PQ = RQ = (n-1)/(n-0.5)
    n = sum(s['category_id'] == thing['category_id']
            for a in gt['annotations'] for s in a['segments_info'])
    expected_th = 100 * (num_things - 1 + (n - 1) / (n - 0.5)) / num_things
    assert out['PQ_th'] == pytest.approx(expected_th)
    assert out['PQ'] == pytest.approx(
        (expected_th * num_things + 100 * (num_classes - num_things)) / num_classes)


def test_matches_cityscapes_official_script(dataset, gt, gt_samples, tmp_path,
                                            capsys):
    """Same numbers as cityscapesScripts' evaluatePanoptic on the written files."""
    from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import \
        evaluatePanoptic
    classes = dataset.metainfo['classes']
    cats = {c['id']: c for c in gt['categories']}
    samples = list(gt_samples)
    for i in (0, 1, 2):  # drop one stuff segment and one thing of three images
        segs = gt['annotations'][i]['segments_info']
        stuff = next(classes.index(cats[s['category_id']]['name']) for s in segs
                     if not cats[s['category_id']]['isthing'])
        samples[i] = without_segment(samples[i], stuff, len(classes))
        thing = next(classes.index(cats[s['category_id']]['name']) + k * 1000
                     for k, s in enumerate(segs, 1)
                     if cats[s['category_id']]['isthing'])
        samples[i] = without_segment(samples[i], thing, stuff)  # wrong class instead
    prefix = str(tmp_path / 'res')
    out = evaluate(make_metric(dataset, outfile_prefix=prefix), samples)
    assert out['PQ'] < 100.0
    official = evaluatePanoptic(
        osp.join(CS, VAL_JSON), osp.join(CS, 'gtFine', 'cityscapes_panoptic_val'),
        f'{prefix}.panoptic.json', f'{prefix}.panoptic', str(tmp_path / 'r.json'))
    capsys.readouterr()
    for name, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for key in ('PQ', 'SQ', 'RQ'):
            assert out[key + suffix] == pytest.approx(
                100 * official[name][key.lower()]), key + suffix


def test_results_from_several_ranks_combine(dataset, gt_samples):
    """What each rank's ``process`` stores is self-contained (PNG bytes), so
    the main process can score the collected results alone."""
    rank0, rank1 = make_metric(dataset), make_metric(dataset)
    rank0.process({}, gt_samples[0::2])
    rank1.process({}, gt_samples[1::2])
    out = rank0.compute_metrics(rank0.results + rank1.results)
    assert out['PQ'] == pytest.approx(100.0)


def test_subset_of_images(dataset, gt_samples):
    out = evaluate(make_metric(dataset), gt_samples[:5])
    assert out['PQ'] == pytest.approx(100.0)


def test_missing_gt_names_path_and_converter(dataset, tmp_path):
    with pytest.raises(UserError, match=r"gt_json '.*nope.json' not found.*"
                       r'dataset_converters/cityscapes_panoptic.py'):
        make_metric(dataset, data_root=str(tmp_path), gt_json='nope.json')
    (tmp_path / 'x.json').write_text('{}')
    with pytest.raises(UserError, match=r"gt_folder '.*/x' not found"):
        make_metric(dataset, data_root=str(tmp_path), gt_json='x.json')


def _bad(sample: dict, **changes: Optional[object]) -> dict:
    return {**sample, **changes}


def test_prediction_for_unknown_image(dataset, gt_samples):
    metric = make_metric(dataset)
    bad = _bad(gt_samples[0], img_id='nowhere_000000_000019',
               img_path='x/nowhere_000000_000019_leftImg8bit.png')
    with pytest.raises(UserError, match="'nowhere_000000_000019'.*no GT in gt_json"):
        metric.process({}, [bad])


def test_prediction_found_by_img_path(dataset, gt_samples):
    metric = make_metric(dataset)
    metric.process({}, [_bad(gt_samples[0], img_id=0)])
    assert metric.results[0]['image_id'] == gt_samples[0]['img_id']


def test_wrong_size_or_no_panoptic_prediction(dataset, gt_samples):
    metric = make_metric(dataset)
    small = gt_samples[0]['pred_panoptic_seg']['sem_seg'][:, :10]
    with pytest.raises(UserError, match='original image size'):
        metric.process({}, [_bad(gt_samples[0],
                                 pred_panoptic_seg=dict(sem_seg=small))])
    with pytest.raises(UserError, match='pred_panoptic_seg'):
        metric.process({}, [_bad(gt_samples[0], pred_panoptic_seg=None)])


def test_classes_not_in_gt_json(dataset, gt_samples):
    metric = make_metric(dataset)
    metric.dataset_meta = dict(dataset.metainfo, classes=('person', 'sky'))
    with pytest.raises(UserError, match=r"\['person'\] are not categories of gt_json"):
        metric.process({}, gt_samples[:1])


def test_written_files_follow_the_cityscapes_result_format(dataset, gt, gt_samples,
                                                           tmp_path):
    prefix = str(tmp_path / 'res')
    evaluate(make_metric(dataset, outfile_prefix=prefix), gt_samples[:3])
    with open(f'{prefix}.panoptic.json') as f:
        anns = json.load(f)['annotations']
    assert [a['image_id'] for a in anns] == [s['img_id'] for s in gt_samples[:3]]
    cat_ids = {c['id'] for c in gt['categories']}
    for ann, gt_ann in zip(anns, gt['annotations']):
        bgr = cv2.imread(osp.join(f'{prefix}.panoptic', ann['file_name']))
        ids = bgr[..., 2] + 256 * bgr[..., 1].astype(np.int64)
        segs = ann['segments_info']
        assert set(np.unique(ids).tolist()) - {0} == {s['id'] for s in segs}
        assert {s['category_id'] for s in segs} <= cat_ids
        assert sorted((s['category_id'], s['area']) for s in segs) == sorted(
            (s['category_id'], s['area']) for s in gt_ann['segments_info'])


def test_through_mmengine_evaluator_with_det_data_samples(dataset, gt_samples):
    """As in a val loop: an Evaluator built from the config, fed DetDataSamples."""
    from mmdet.structures import DetDataSample
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    init_default_scope('mmdet')
    evaluator = Evaluator(dict(type='CityscapesPanopticMetric', data_root=CS,
                               gt_json=VAL_JSON))
    evaluator.dataset_meta = dataset.metainfo
    for sample in gt_samples[:4]:
        pred = DetDataSample(metainfo=dict(img_id=sample['img_id'],
                                           img_path=sample['img_path']))
        pred.pred_panoptic_seg = PixelData(
            sem_seg=sample['pred_panoptic_seg']['sem_seg'])
        evaluator.process([pred])
    out = evaluator.evaluate(4)
    assert out['cityscapes_panoptic/PQ'] == pytest.approx(100.0)


def test_ignore_index_255_void_scores_like_num_classes_void(dataset, gt, gt_samples):
    """A prediction may mark void with its ``ignore_index`` (255, as mmdet's
    MaskFormer-style heads do) instead of ``num_classes``: the same scores, through
    DetDataSamples and mmengine's Evaluator (PixelData metainfo)."""
    from mmdet.structures import DetDataSample
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    init_default_scope('mmdet')
    classes = dataset.metainfo['classes']
    num_classes = len(classes)
    cats = {c['id']: c for c in gt['categories']}
    # Remove one thing and one stuff segment of image 0 (so scores are below 100 and
    # the void pixels matter), then encode void both ways.
    segs = gt['annotations'][0]['segments_info']
    k, thing = next((k, s) for k, s in enumerate(segs, 1)
                    if cats[s['category_id']]['isthing'])
    stuff = next(s for s in segs if not cats[s['category_id']]['isthing'])
    base = without_segment(gt_samples[0], classes.index(cats[thing['category_id']]['name'])
                           + k * 1000, num_classes)
    base = without_segment(base, classes.index(cats[stuff['category_id']]['name']),
                           num_classes)
    samples = [base] + list(gt_samples[1:])

    def run(void_value, ignore_index):
        evaluator = Evaluator(dict(type='CityscapesPanopticMetric', data_root=CS,
                                   gt_json=VAL_JSON))
        evaluator.dataset_meta = dataset.metainfo
        for sample in samples:
            pan = sample['pred_panoptic_seg']['sem_seg'].clone()
            pan[pan == num_classes] = void_value
            pred = DetDataSample(metainfo=dict(img_id=sample['img_id'],
                                               img_path=sample['img_path']))
            meta = {} if ignore_index is None else dict(ignore_index=ignore_index)
            pred.pred_panoptic_seg = PixelData(sem_seg=pan, metainfo=meta)
            evaluator.process([pred])
        return evaluator.evaluate(len(samples))

    reference = run(num_classes, None)
    assert reference['cityscapes_panoptic/PQ'] < 100.0
    assert reference['cityscapes_panoptic/PQ_st'] < 100.0
    assert run(255, 255) == reference
    # Without the ignore_index, 255 is not a class: a clear error, not a score.
    with pytest.raises(UserError, match='outside'):
        run(255, None)
