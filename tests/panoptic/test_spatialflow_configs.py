"""configs/spatialflow: every config builds; without data they stop at once naming
the folder; the demo trains via tools/train.py and both panoptic metrics (mmdet's
COCO PQ, mmext's Cityscapes PQ) run on its predictions via tools/test.py."""
import glob
import json
import os.path as osp

import pytest

import mmext  # noqa: F401
from mmengine.config import Config
from mmdet.registry import MODELS

from mmext.panoptic import SpatialFlow, SpatialFlowHead
from tests.tool_runner import ROOT, run_tool

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/spatialflow/*.py')))
DEMO = 'configs/demo/spatialflow_r18_demo.py'
DEMO_CITYSCAPES = 'configs/demo/spatialflow_r18_demo_cityscapes.py'
FAST = ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
        # An untrained model scores ~0.01: keep every detection so things get pasted.
        'model.test_cfg.score_thr=0.0', 'model.test_cfg.panoptic.score_thr=0.0']


def test_the_issue_configs_exist():
    names = {osp.basename(c) for c in CONFIGS}
    assert {'spatialflow_r50_fpn_20e_coco.py', 'spatialflow_r101_fpn_20e_coco.py',
            'spatialflow_r50_fpn_20e_coco_noflows.py',
            'spatialflow_r50_fpn_cityscapes.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None  # no download: the structure is what we test
    model = MODELS.build(cfg.model)
    assert isinstance(model, SpatialFlow)
    assert isinstance(model.bbox_head, SpatialFlowHead)
    assert model.bbox_head.with_flows == ('noflows' not in path)
    cityscapes = 'cityscapes' in path
    assert (model.num_things_classes, model.num_stuff_classes) == \
        ((8, 11) if cityscapes else (80, 53))
    assert cfg.val_evaluator.type == ('CityscapesPanopticMetric' if cityscapes
                                      else 'CocoPanopticMetric')
    # The official recipe's fusion thresholds and test NMS.
    assert dict(cfg.model.test_cfg.panoptic) == dict(
        score_thr=0.37, overlap_thr=0.37, stuff_area_limit=4900, box_fill_thr=0.5)
    assert cfg.model.test_cfg.nms == dict(type='nms', iou_threshold=0.4)
    assert cfg.model.train_cfg.mask_proposal.nms.iou_threshold == 0.4
    assert model.fusion.box_fill_thr == 0.5


COCO_FULL = [c for c in CONFIGS if 'coco' in osp.basename(c)]


@pytest.mark.parametrize('path', COCO_FULL, ids=osp.basename)
def test_coco_configs_train_with_the_official_optimizer(path):
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.005, momentum=0.9,
                                               weight_decay=0.0001)
    assert cfg.optim_wrapper.get('clip_grad') is None
    assert cfg.auto_scale_lr.base_batch_size == 8 and cfg.train_dataloader.batch_size == 2
    assert cfg.train_cfg.max_epochs == 20
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'MultiStepLR']
    assert cfg.param_scheduler[0].end == 500 and cfg.param_scheduler[0].start_factor == 0.001
    assert cfg.param_scheduler[1].milestones == [16, 19]
    mask_assigner = cfg.model.train_cfg.mask.assigner
    assert mask_assigner.get('match_low_quality', True) is True


def test_r101_dcn_config_is_the_official_multiscale_fp16_recipe():
    from mmcv.ops import ModulatedDeformConv2dPack
    from mmext.panoptic.spatialflow_head import ModulatedDeformConvModule
    cfg = Config.fromfile(osp.join(ROOT, 'configs/spatialflow/'
                                   'spatialflow_r101-dcn_fpn_ms-20e_coco.py'))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 512.
    resize = [t for t in cfg.train_dataloader.dataset.pipeline if 'Resize' in t.type]
    assert resize == [dict(type='RandomResize', scale=[(1600, 400), (1600, 1400)],
                           keep_ratio=True)]
    assert cfg.train_dataloader.num_workers == 4
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert model.backbone.depth == 101
    assert isinstance(model.backbone.layer2[0].conv2, ModulatedDeformConv2dPack)
    assert not isinstance(model.backbone.layer1[0].conv2, ModulatedDeformConv2dPack)
    head = model.bbox_head
    assert all(isinstance(c, ModulatedDeformConvModule)
               for c in [*head.cls_convs, *head.stuff_convs, head.mask_convs[0]])


@pytest.mark.parametrize('path,folder', [
    ('configs/spatialflow/spatialflow_r50_fpn_20e_coco.py', 'data/coco'),
    ('configs/spatialflow/spatialflow_r50_fpn_cityscapes.py', 'data/cityscapes'),
])
def test_missing_dataset_stops_with_layout(path, folder, tmp_path):
    proc = run_tool(['tools/train.py', path, '--work-dir', str(tmp_path)], timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith('mmext: error:')]
    assert len(error) == 1, proc.stderr[-2000:]
    assert folder in error[0]
    # The expected layout is printed with it.
    assert 'panoptic' in proc.stderr


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('spatialflow_demo')
    proc = run_tool(['tools/train.py', DEMO, '--work-dir', str(work_dir), '--cfg-options',
                     *FAST, 'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
                     'default_hooks.checkpoint.interval=3'])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The validation at the end of training ran mmdet's CocoPanopticMetric.
    assert 'coco_panoptic/PQ' in proc.stdout + proc.stderr
    return work_dir, work_dir / 'iter_3.pth'


def _metrics(work_dir):
    found = sorted(glob.glob(str(work_dir / '*' / '*.json')), key=osp.getmtime)
    with open(found[-1]) as f:
        return json.load(f)


@pytest.mark.parametrize('config,prefix', [(DEMO, 'coco_panoptic'),
                                           (DEMO_CITYSCAPES, 'cityscapes_panoptic')])
def test_demo_predictions_evaluate(demo_checkpoint, config, prefix, tmp_path):
    _, checkpoint = demo_checkpoint
    proc = run_tool(['tools/test.py', config, str(checkpoint), '--work-dir', str(tmp_path),
                     '--show-dir', 'vis', '--cfg-options', *FAST[4:],
                     'default_hooks.visualization.interval=20'])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = _metrics(tmp_path)
    for key in ('PQ', 'PQ_th', 'PQ_st'):
        value = metrics[f'{prefix}/{key}']
        assert 0.0 <= value <= 100.0
    # mmdet's visualiser drew the panoptic results.
    assert glob.glob(str(tmp_path / '*' / 'vis' / '*.png'))
