"""SpatialFlowHead: output shapes per level, the flows' gradient paths, DCN variant."""
import pytest
import torch

import mmext  # noqa: F401
from mmdet.utils import register_all_modules

from mmext.panoptic import SpatialFlowHead

register_all_modules(init_default_scope=True)

SIZES = [32, 16, 8, 4, 2]  # P3..P7 of a 256 px input
NUM_CLASSES = 3
NUM_ANCHORS = 9


def _head(**kwargs) -> SpatialFlowHead:
    torch.manual_seed(0)
    head = SpatialFlowHead(num_classes=NUM_CLASSES, in_channels=16, feat_channels=16,
                           stacked_convs=kwargs.pop('stacked_convs', 3), **kwargs)
    head.init_weights()
    return head


def _feats(batch: int = 2):
    torch.manual_seed(1)
    return tuple(torch.randn(batch, 16, s, s) for s in SIZES)


@pytest.mark.parametrize('flows,dcn', [(True, False), (False, False), (True, True)])
def test_output_shapes_per_level(flows, dcn):
    cls, box, stuff, mask = _head(with_flows=flows, dcn=dcn)(_feats())
    assert [c.shape for c in cls] == [(2, NUM_ANCHORS * NUM_CLASSES, s, s) for s in SIZES]
    assert [b.shape for b in box] == [(2, NUM_ANCHORS * 4, s, s) for s in SIZES]
    # Stuff and mask towers only on P3..P5.
    assert [t.shape for t in stuff] == [(2, 16, s, s) for s in SIZES[:3]]
    assert [t.shape for t in mask] == [(2, 16, s, s) for s in SIZES[:3]]


def _reg_tower_grad(head, output_index):
    head.zero_grad()
    outs = head(_feats())
    sum(o.square().mean() for o in outs[output_index]).backward()
    grads = [p.grad for p in head.reg_convs.parameters()]
    return sum(0.0 if g is None else g.abs().sum().item() for g in grads)


@pytest.mark.parametrize('output_index,name', [(0, 'cls'), (2, 'stuff'), (3, 'mask')])
def test_flows_carry_gradient_from_other_tasks_into_the_box_tower(output_index, name):
    assert _reg_tower_grad(_head(with_flows=True), output_index) > 0, name
    assert _reg_tower_grad(_head(with_flows=False), output_index) == 0, name


def test_classification_loss_reaches_regression_tower_only_with_flows():
    """The issue's check, with RetinaNet's real focal loss on real targets."""
    from mmengine.structures import InstanceData
    gt = InstanceData(bboxes=torch.tensor([[20., 30., 90., 120.], [100., 100., 200., 180.]]),
                      labels=torch.tensor([0, 2]))
    metas = [dict(img_shape=(256, 256), pad_shape=(256, 256), batch_input_shape=(256, 256))]
    grads = {}
    train_cfg = dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                   neg_iou_thr=0.4, min_pos_iou=0),
                     sampler=dict(type='PseudoSampler'), allowed_border=-1,
                     pos_weight=-1, debug=False)
    for flows in (True, False):
        head = _head(with_flows=flows, train_cfg=train_cfg)
        cls, box, _, _ = head(_feats(batch=1))
        losses = head.loss_by_feat(cls, box, [gt], metas)
        loss_cls = sum(losses['loss_cls'])
        assert loss_cls.item() > 0
        loss_cls.backward()
        grads[flows] = sum(0.0 if p.grad is None else p.grad.abs().sum().item()
                           for p in head.reg_convs.parameters())
    assert grads[True] > 0
    assert grads[False] == 0


def test_mask_flow_sources_are_stuff_and_regression():
    head = _head(with_flows=True)
    head.zero_grad()
    sum(m.sum() for m in head(_feats())[3]).backward()
    assert head.mask_flow_reg.weight.grad.abs().sum() > 0
    assert head.mask_flow_stuff.weight.grad.abs().sum() > 0
    # The class tower does not feed the mask tower.
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in head.cls_convs.parameters())


def test_dcn_offsets_start_at_zero_and_learn_from_flows():
    head = _head(with_flows=True, dcn=True)
    for layer in [*head.cls_convs, *head.stuff_convs]:
        assert layer.conv_offset.weight.abs().sum() == 0
    head.zero_grad()
    sum(c.square().mean() for c in head(_feats())[0]).backward()
    assert all(layer.conv_offset.weight.grad.abs().sum() > 0 for layer in head.cls_convs)


def test_wrong_number_of_levels_is_a_clear_error():
    with pytest.raises(ValueError, match='num_outs'):
        _head()(_feats()[:4])


@pytest.mark.parametrize('kwargs,match', [
    (dict(with_flows=False, dcn=True), 'with_flows'),
    (dict(num_panoptic_levels=6), 'num_panoptic_levels'),
    (dict(stacked_convs=0), 'stacked_convs'),
])
def test_bad_head_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _head(**kwargs)
