"""SpatialFlow detector: losses on demo batches, panoptic outputs in mmdet's format,
empty cases, config consistency errors, swapping parts by config."""
import copy
import os.path as osp
import re

import pytest
import torch

import mmext  # noqa: F401
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import DATASETS, MODELS

from tests.tool_runner import ROOT

DEMO = osp.join(ROOT, 'configs/demo/spatialflow_r18_demo.py')
NUM_THINGS, NUM_STUFF = 3, 3


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(DEMO)


def _model(cfg, **model_overrides):
    model_cfg = copy.deepcopy(cfg.model)
    for key, value in model_overrides.items():
        model_cfg[key] = value
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def _batch(cfg, model, split='train', n=2):
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset = DATASETS.build(loader.dataset)
    data = pseudo_collate([dataset[i] for i in range(n)])
    return model.data_preprocessor(data, split == 'train')


def test_loss_has_every_task_and_backpropagates(cfg):
    model = _model(cfg)
    data = _batch(cfg, model)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_cls', 'loss_bbox', 'loss_mask', 'loss_seg'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    # Every branch receives gradient: stuff head, mask head and all four towers.
    for module in (model.stuff_head.conv_logits, model.mask_branch.mask_head.conv_logits,
                   model.bbox_head.stuff_convs[0], model.bbox_head.mask_convs[0],
                   model.bbox_head.cls_flows[0]):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def _check_panoptic(sample):
    pan = sample.pred_panoptic_seg.sem_seg
    assert pan.dtype == torch.int64 and pan.shape == (1, *sample.ori_shape)
    labels = pan % INSTANCE_OFFSET
    ids = pan // INSTANCE_OFFSET
    void = NUM_THINGS + NUM_STUFF
    assert ((labels <= void)).all()
    things = labels < NUM_THINGS
    # Things carry an instance id, stuff and void do not.
    assert (ids[things] >= 1).all() and (ids[~things] == 0).all()
    return pan


def test_predict_gives_mmdet_panoptic_maps(cfg):
    model = _model(cfg, test_cfg=dict(cfg.model.test_cfg, score_thr=0.0,
                                      panoptic=dict(score_thr=0.0, overlap_thr=0.37,
                                                    stuff_area_limit=16,
                                                    box_fill_thr=0.5)))
    model.eval()
    data = _batch(cfg, model, split='val')
    with torch.no_grad():
        samples = model.predict(data['inputs'], data['data_samples'])
    for sample in samples:
        pan = _check_panoptic(sample)
        # With every detection kept, an untrained model still pastes instances.
        assert (pan % INSTANCE_OFFSET < NUM_THINGS).any()


@pytest.mark.parametrize('case', ['zero_detections', 'no_stuff_kept'])
def test_empty_cases_give_valid_maps(cfg, case):
    test_cfg = copy.deepcopy(cfg.model.test_cfg)
    if case == 'zero_detections':
        test_cfg.score_thr = 1.01  # nothing survives post-processing
    else:
        test_cfg.panoptic.stuff_area_limit = 10 ** 9
        test_cfg.panoptic.score_thr = 2.0
    model = _model(cfg, test_cfg=test_cfg).eval()
    data = _batch(cfg, model, split='val')
    with torch.no_grad():
        samples = model.predict(data['inputs'], data['data_samples'])
    for sample in samples:
        pan = _check_panoptic(sample)
        if case == 'no_stuff_kept':
            assert (pan == NUM_THINGS + NUM_STUFF).all()  # all void
        else:
            assert (pan % INSTANCE_OFFSET >= NUM_THINGS).all()  # stuff or void


def test_output_instances_for_coco_metric(cfg):
    model = _model(cfg, output_instances=True,
                   test_cfg=dict(cfg.model.test_cfg, score_thr=0.0)).eval()
    data = _batch(cfg, model, split='val', n=1)
    with torch.no_grad():
        sample = model.predict(data['inputs'], data['data_samples'])[0]
    inst = sample.pred_instances
    assert inst.masks.shape[1:] == sample.ori_shape and len(inst) == len(inst.bboxes) > 0


@pytest.mark.parametrize('path,value,match', [
    ('stuff_head.num_things_classes', 5, 'thing classes differ'),
    ('mask_branch.mask_roi_extractor.featmap_strides', [8, 16], 'featmap_strides'),
    ('stuff_head.num_upsamples', (1, 2), 'num_upsamples'),
    ('test_cfg.panoptic.bogus', 1, 'unknown test_cfg.panoptic'),
])
def test_inconsistent_config_is_a_clear_error(cfg, path, value, match):
    model_cfg = copy.deepcopy(cfg.model)
    node = model_cfg
    *parents, leaf = path.split('.')
    for key in parents:
        node = node[key]
    node[leaf] = value
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg)


def test_mask_head_is_swappable_by_config(cfg):
    """Any mmdet mask head fits: here a class-agnostic FCN head with 1 conv."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.mask_branch.mask_head.update(num_convs=1, class_agnostic=True)
    model = MODELS.build(model_cfg)
    data = _batch(cfg, model)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['loss_mask'])
    assert len(model.mask_branch.mask_head.convs) == 1


def test_dcn_variant_trains_end_to_end(cfg):
    """The official DCN head (no norm, as officially) in the full detector: finite
    losses, and the offset flows (27 channels) and deformable convs learn."""
    head = dict(cfg.model.bbox_head, dcn=True, norm_cfg=None)
    model = _model(cfg, bbox_head=head)
    data = _batch(cfg, model)
    losses = model.loss(data['inputs'], data['data_samples'])
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    head = model.bbox_head
    for module in (head.cls_flows[0], head.stuff_flows[-1], head.mask_flow_reg,
                   head.cls_convs[0].conv, head.mask_convs[0].conv):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


RETINA_STRIDES = [8, 16, 32, 64, 128]


def test_neck_stride_problems_name_both_lists_and_the_keys():
    from mmext.panoptic.neck_strides import neck_stride_problems
    assert neck_stride_problems(RETINA_STRIDES, RETINA_STRIDES, 3, [8, 16, 32],
                                [1, 2, 3]) == []
    # HRNet + HRFPN with its default stride=1: P2..P6. The anchors cannot follow
    # (the stuff head takes no stride-4 level), so only the neck fix is offered.
    assert neck_stride_problems([4, 8, 16, 32, 64], RETINA_STRIDES, 3, [8, 16, 32],
                                [1, 2, 3]) == [
        'the neck outputs 5 maps of strides [4, 8, 16, 32, 64] (measured with a dummy '
        'forward) but bbox_head.anchor_generator.strides is [8, 16, 32, 64, 128]: '
        'change the neck so that it outputs the anchor strides (its output count and '
        'first stride: e.g. FPN num_outs / start_level / add_extra_convs, HRFPN '
        'num_outs / stride); the anchors cannot follow the neck instead: its stride-4 '
        'map is finer than the stuff head takes (stride >= 8, stuff_head.num_upsamples '
        '>= 1)']
    # Too few outputs: the count is named; here the anchors could follow.
    fewer = neck_stride_problems([8, 16, 32, 64], RETINA_STRIDES, 3, [8, 16, 32],
                                 [1, 2, 3])
    assert len(fewer) == 1
    assert fewer[0].startswith('the neck outputs 4 maps of strides [8, 16, 32, 64] '
                               '(measured with a dummy forward) but bbox_head.'
                               'anchor_generator.strides is [8, 16, 32, 64, 128] '
                               '(5 levels): ')
    assert fewer[0].endswith(
        "or set bbox_head.anchor_generator.strides to the neck's strides (and "
        'mask_branch.mask_roi_extractor.featmap_strides and stuff_head.num_upsamples '
        'for the first 3 levels with them)')
    # The stuff head's levels: count, then strides (4 * 2 ** n).
    assert neck_stride_problems(RETINA_STRIDES, RETINA_STRIDES, 3, [8, 16, 32],
                                [1, 2, 2]) == [
        'stuff_head.num_upsamples=(1, 2, 2) takes levels of strides [8, 16, 16] '
        '(4 * 2 ** n) but the 3 panoptic levels have strides [8, 16, 32]']
    assert neck_stride_problems(RETINA_STRIDES, RETINA_STRIDES, 3, [8, 16],
                                [1, 2]) == [
        'mask_branch.mask_roi_extractor.featmap_strides=[8, 16] must be the strides of '
        'the 3 panoptic levels [8, 16, 32] (bbox_head.anchor_generator.strides[:bbox_'
        'head.num_panoptic_levels])',
        'stuff_head has 2 branches (num_upsamples=(1, 2)) for 3 panoptic levels '
        '(bbox_head.num_panoptic_levels)']


@pytest.mark.parametrize('neck,measured', [
    (dict(start_level=0, add_extra_convs='on_input', num_outs=5),  # P2..P6
     '[4, 8, 16, 32, 64]'),
    (dict(num_outs=4), '[8, 16, 32, 64]'),  # P3..P6: one level short
])
def test_neck_strides_are_measured_at_build(cfg, neck, measured):
    """The neck's outputs are measured, not read from its config: a neck giving
    other strides than the anchors is refused when the model is built."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.neck.update(neck)
    with pytest.raises(ValueError, match=r'^SpatialFlow config: the neck outputs \d '
                       rf'maps of strides {re.escape(measured)} \(measured with a '
                       r'dummy forward\) but bbox_head.anchor_generator.strides is '
                       r'\[8, 16, 32, 64, 128\]'):
        MODELS.build(model_cfg)


def test_measuring_the_neck_keeps_modes_and_statistics(cfg):
    model = _model(cfg)
    model.train()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    assert [s for s, _ in model.measure_neck()] == RETINA_STRIDES
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, stats[k]) for k, v in model.state_dict().items())


def test_a_neck_that_cannot_run_is_a_build_error(cfg):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.neck.in_channels = [64, 128, 256, 1024]  # R18's C5 has 512
    with pytest.raises(ValueError, match=r'backbone \+ neck fail on a 1x3x256x256 '
                       r'dummy input \(RuntimeError: .*neck.in_channels'):
        MODELS.build(model_cfg)
