"""BoundaryIoUMetric: bands and values on hand-computed label maps."""
import pytest
import torch

import mmext  # noqa: F401  (registers the metric)
from mmengine.structures import PixelData
from mmseg.registry import METRICS

from mmext.evaluation.boundary_iou_metric import boundary_band


def _sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))


def _metric(widths, classes=('a', 'b')):
    metric = METRICS.build(dict(type='BoundaryIoUMetric', widths=widths))
    metric.dataset_meta = dict(classes=classes)
    return metric


# A 6x6 map: columns 0-2 class 0, columns 3-5 class 1 (one vertical edge).
GT = torch.tensor([[0, 0, 0, 1, 1, 1]] * 6)


def test_band_widths():
    # Boundary pixels: columns 2 and 3; width d adds d-1 columns on each side.
    assert boundary_band(GT, 1)[0].tolist() == [0, 0, 1, 1, 0, 0]
    assert boundary_band(GT, 2)[0].tolist() == [0, 1, 1, 1, 1, 0]
    assert boundary_band(GT, 3)[0].tolist() == [1] * 6
    assert boundary_band(GT, 1).all(1).tolist() == [False] * 6  # same in every row


def test_values_by_hand():
    # The prediction puts the edge one column to the right (columns 0-3 class 0).
    pred = torch.tensor([[0, 0, 0, 0, 1, 1]] * 6)
    metric = _metric((1, 2, 3))
    metric.process({}, [_sample(pred, GT)])
    res = metric.evaluate(1)
    # d=1 (columns 2, 3): class 0: I 6 (col 2), U 12 (pred cols 2,3) -> 1/2;
    #   class 1: I 0, U 6 -> 0.                                   mean 25.00
    # d=2 (columns 1-4): class 0: I 12, U 18 -> 2/3; class 1: I 6 (col 4),
    #   U 12 (gt cols 3, 4) -> 1/2.                               mean 58.33
    # d=3 (every column, = mIoU): class 0: 18/24; class 1: 12/18. mean 70.83
    assert res == {'bIoU@1px': 25.0, 'bIoU@2px': 58.33, 'bIoU@3px': 70.83}


def test_edges_between_rows_and_non_square_maps():
    """A label change between two rows makes a band as one between two columns does
    (every fixture above has column changes only), on non-square maps too."""
    gt = torch.tensor([[0, 0, 0]] * 2 + [[1, 1, 1]] * 4)  # 6x3, edge below row 1
    assert boundary_band(gt, 1)[:, 0].tolist() == [0, 1, 1, 0, 0, 0]
    assert boundary_band(gt, 2)[:, 0].tolist() == [1, 1, 1, 1, 0, 0]
    assert boundary_band(gt, 1).all(0).tolist() == [False] * 3  # same in every column
    for d in (1, 2, 3):
        assert torch.equal(boundary_band(GT[:4].t(), d), boundary_band(GT[:4], d).t())
    # test_values_by_hand on the transposed 6x4 maps: the same per-class ratios.
    pred = torch.tensor([[0, 0, 0, 0, 1, 1]] * 4)
    metric = _metric((1, 2, 3))
    metric.process({}, [_sample(pred.t(), GT[:4].t())])
    assert metric.evaluate(1) == {'bIoU@1px': 25.0, 'bIoU@2px': 58.33, 'bIoU@3px': 70.83}


def test_ignore_and_accumulation_over_images():
    gt = GT.clone()
    gt[:3, 2] = 255  # ignored pixels are never scored, but their edges are boundaries
    pred = torch.zeros(6, 6, dtype=torch.long)
    metric = _metric((1, ))
    metric.process({}, [_sample(pred, gt), _sample(GT, GT)])
    res = metric.evaluate(2)
    # Image 1, d=1: boundary columns: rows 0-2 -> cols 1, 2(ignored), 3; rows 3-5 ->
    # cols 2, 3. Scored: rows 0-2 col 1 (gt 0) and col 3 (gt 1); rows 3-5 col 2 (gt 0),
    # col 3 (gt 1). pred all 0: class 0 I 6, U 12; class 1 I 0, U 6.
    # Image 2 (perfect), d=1: class 0 I 6 U 6; class 1 I 6 U 6.
    # Total: class 0 12/18, class 1 6/12 -> (2/3 + 1/2) / 2 = 58.33
    assert res == {'bIoU@1px': 58.33}


def test_bad_widths():
    with pytest.raises(ValueError, match='widths must be positive integers'):
        METRICS.build(dict(type='BoundaryIoUMetric', widths=(0, 3)))


def test_next_to_iou_metric_in_an_evaluator():
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')  # as a Runner with default_scope='mmseg'
    evaluator = Evaluator([dict(type='IoUMetric', iou_metrics=['mIoU']),
                           dict(type='BoundaryIoUMetric', widths=(3, ))])
    evaluator.dataset_meta = dict(classes=('a', 'b'))
    from mmseg.structures import SegDataSample
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=GT[None])
    s.pred_sem_seg = PixelData(data=torch.tensor([[0, 0, 0, 0, 1, 1]] * 6)[None])
    s.set_metainfo(dict(img_path='x.png'))
    evaluator.process([s])
    res = evaluator.evaluate(1)
    assert res['bIoU@3px'] == pytest.approx(res['mIoU'], abs=0.01) == 70.83
