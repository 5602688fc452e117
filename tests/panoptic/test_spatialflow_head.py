"""SpatialFlowHead: output shapes per level, each flow pinned to its depth and its
source, conv / norm config of the flows, and the official DCN variant's structure."""

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.ops import ModulatedDeformConv2d

import mmext  # noqa: F401
from mmdet.utils import register_all_modules

from mmext.panoptic import SpatialFlowHead
from mmext.panoptic.spatialflow_head import ModulatedDeformConvModule

register_all_modules(init_default_scope=True)

SIZES = [32, 16, 8, 4, 2]  # P3..P7 of a 256 px input
NUM_CLASSES = 3
NUM_ANCHORS = 9
C = 16
GN = dict(type='GN', num_groups=4, requires_grad=True)


def _head(**kwargs) -> SpatialFlowHead:
    torch.manual_seed(0)
    head = SpatialFlowHead(num_classes=NUM_CLASSES, in_channels=C, feat_channels=C,
                           stacked_convs=kwargs.pop('stacked_convs', 3), **kwargs)
    head.init_weights()
    return head


def _feats(batch: int = 2, levels=SIZES):
    torch.manual_seed(1)
    return tuple(torch.randn(batch, C, s, s) for s in levels)


@pytest.mark.parametrize('flows,dcn', [(True, False), (False, False), (True, True)])
def test_output_shapes_per_level(flows, dcn):
    cls, box, stuff, mask = _head(with_flows=flows, dcn=dcn)(_feats())
    assert [c.shape for c in cls] == [(2, NUM_ANCHORS * NUM_CLASSES, s, s) for s in SIZES]
    assert [b.shape for b in box] == [(2, NUM_ANCHORS * 4, s, s) for s in SIZES]
    # Stuff and mask towers only on P3..P5.
    assert [t.shape for t in stuff] == [(2, C, s, s) for s in SIZES[:3]]
    assert [t.shape for t in mask] == [(2, C, s, s) for s in SIZES[:3]]


# ------------------------------------------------------------------ flow depths

def _grads_of(head, output_index, modules):
    """|grad| of each module's parameters from a scalar of one head output."""
    head.zero_grad()
    outs = head(_feats(batch=1, levels=SIZES[:3] + [4, 2]))
    sum(o.square().mean() for o in outs[output_index]).backward()
    return [sum(0.0 if p.grad is None else p.grad.abs().sum().item()
                for p in m.parameters()) for m in modules]


@pytest.mark.parametrize('dcn', [False, True])
@pytest.mark.parametrize('output_index,name', [(0, 'cls'), (2, 'stuff')])
def test_class_and_stuff_outputs_reach_the_last_regression_conv(output_index, name, dcn):
    """The i-th flow leaves the i-th regression conv: the last regression conv
    feeds the last class / stuff conv. Taking the flows one conv early (from
    reg_{i-1}) cuts this path."""
    head = _head(dcn=dcn)
    grads = _grads_of(head, output_index, head.reg_convs)
    assert all(g > 0 for g in grads), (name, grads)
    assert _grads_of(_head(with_flows=False), output_index,
                     _head(with_flows=False).reg_convs) == [0.0] * 3


def test_flow_i_enters_class_conv_i():
    """Perturbing only the i-th regression conv's output changes the class feature
    from depth i on, and the i-th flow conv is the path: zeroing it removes the
    effect of reg_i on cls conv i (the last depth: only cls_flows[-1] reads reg_-1)."""
    head = _head().eval()
    x = _feats(batch=1, levels=[8])[0]
    captured = {}

    def capture(name):
        def hook(module, args):
            captured[name] = args[0].detach().clone()
        return hook

    for i, conv in enumerate(head.cls_convs):
        conv.register_forward_pre_hook(capture(f'cls_in{i}'))
    head.forward_single(x, panoptic=True)
    base = dict(captured)
    # Change the last regression conv's output only.
    handle = head.reg_convs[-1].register_forward_hook(lambda m, a, out: out + 1.0)
    head.forward_single(x, panoptic=True)
    handle.remove()
    assert torch.equal(captured['cls_in0'], base['cls_in0'])
    assert torch.equal(captured['cls_in1'], base['cls_in1'])
    # Input of the last class conv = cls feature + cls_flows[-1](reg_last).
    assert not torch.equal(captured['cls_in2'], base['cls_in2'])


def _manual_forward(head, x):
    """The official forward_single_bbox_stuff (non-DCN), written out."""
    cls = reg = stuff = x
    for i in range(head.stacked_convs):
        reg = head.reg_convs[i](reg)
        cls = head.cls_convs[i](cls + head.cls_flows[i](reg))
        stuff = head.stuff_convs[i](stuff + head.stuff_flows[i](reg))
    mask = head.mask_convs[0](x + head.mask_flow_stuff(stuff) + head.mask_flow_reg(reg))
    return head.retina_cls(cls), head.retina_reg(reg), stuff, mask


@pytest.mark.parametrize('norm', [None, GN])
def test_forward_equals_the_official_wiring(norm):
    head = _head(norm_cfg=norm).eval()
    for p in head.parameters():  # outputs far from the prior-bias constant
        nn.init.normal_(p, 0, 0.2)
    x = _feats(batch=1, levels=[8])[0]
    with torch.no_grad():
        got = head.forward_single(x, panoptic=True)
        want = _manual_forward(head, x)
        # The flows taken one regression conv early give a different result.
        early = _manual_forward_shifted(head, x)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert (got[0] - early[0]).abs().max() > 1e-2


def _manual_forward_shifted(head, x):
    cls = reg = x
    for i in range(head.stacked_convs):
        prev = reg
        reg = head.reg_convs[i](reg)
        cls = head.cls_convs[i](cls + head.cls_flows[i](prev if i else reg))
    return (head.retina_cls(cls), )


def test_mask_flow_sources_are_the_last_stuff_and_regression_features():
    head = _head(with_flows=True)
    grads = _grads_of(head, 3, [head.mask_flow_reg, head.mask_flow_stuff,
                                head.stuff_convs[-1], head.reg_convs[-1],
                                head.cls_convs])
    assert all(g > 0 for g in grads[:4]), grads
    assert grads[4] == 0  # the class tower does not feed the mask tower


# ------------------------------------------------------------------ structure

def _weights(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize('norm', [None, GN])
def test_flows_are_conv_modules_with_the_heads_conv_and_norm(norm):
    head = _head(norm_cfg=norm)
    flows = [*head.cls_flows, *head.stuff_flows, head.mask_flow_reg, head.mask_flow_stuff]
    for flow in flows:
        assert isinstance(flow, ConvModule)
        assert flow.activate is None if hasattr(flow, 'activate') else not flow.with_activation
        assert not flow.with_activation  # linear
        if norm is None:
            assert not flow.with_norm
            assert _weights(flow) == {'conv.weight': (C, C, 3, 3), 'conv.bias': (C, )}
        else:
            assert isinstance(flow.gn, nn.GroupNorm) and flow.gn.num_groups == 4
            assert _weights(flow) == {'conv.weight': (C, C, 3, 3), 'gn.weight': (C, ),
                                      'gn.bias': (C, )}


def test_dcn_variant_structure_is_the_official_one():
    head = _head(dcn=True)
    depth = head.stacked_convs
    # Class, stuff and the (first) mask conv deformable; regression plain.
    for tower in (head.cls_convs, head.stuff_convs, head.mask_convs[:1]):
        for conv in tower:
            assert isinstance(conv, ModulatedDeformConvModule)
            assert isinstance(conv.conv, ModulatedDeformConv2d)
            assert _weights(conv) == {'conv.weight': (C, C, 3, 3), 'conv.bias': (C, )}
    assert all(isinstance(c, ConvModule) and isinstance(c.conv, nn.Conv2d)
               for c in head.reg_convs)
    # Their flow convs output 27 = 18 offsets + 9 masks; the stuff -> mask flow
    # stays a feature flow.
    for flow in [*head.cls_flows, *head.stuff_flows, head.mask_flow_reg]:
        assert _weights(flow) == {'conv.weight': (27, C, 3, 3), 'conv.bias': (27, )}
    assert _weights(head.mask_flow_stuff) == {'conv.weight': (C, C, 3, 3),
                                              'conv.bias': (C, )}
    assert len(head.cls_flows) == len(head.stuff_flows) == depth


def test_dcn_offsets_come_from_feature_plus_regression_and_flow_is_not_added():
    """Official: out = flow(cls_feat + reg_feat); offset = out[:, :18],
    mask = sigmoid(out[:, 18:]); cls_feat = relu(mdconv(cls_feat, offset, mask))."""
    head = _head(dcn=True, stacked_convs=1).eval()
    for p in head.parameters():  # non-trivial offsets
        nn.init.normal_(p, 0, 0.2)
    x = _feats(batch=1, levels=[8])[0]
    with torch.no_grad():
        reg = head.reg_convs[0](x)
        out = head.cls_flows[0](x + reg)
        conv = head.cls_convs[0].conv
        want_cls = torch.relu(conv(x, out[:, :18].contiguous(),
                                   out[:, 18:].sigmoid().contiguous()))
        guide = head.mask_flow_reg(x + reg)
        stuff = head.stuff_convs[0](x, head.stuff_flows[0](x + reg))
        want_mask = head.mask_convs[0](x + head.mask_flow_stuff(stuff), guide)
        got = head.forward_single(x, panoptic=True)
        assert torch.equal(got[0], head.retina_cls(want_cls))
        assert torch.equal(got[2], stuff)
        assert torch.equal(got[3], want_mask)
        # Adding the flow to the input (our old variant) differs.
        wrong = torch.relu(conv(x + out[:, :C], out[:, :18].contiguous(),
                                out[:, 18:].sigmoid().contiguous()))
        assert not torch.allclose(got[0], head.retina_cls(wrong))


def test_dcn_with_norm_has_no_conv_bias_and_norm_after_the_conv():
    # GN(1): the 27-channel offset flows get the head's norm too (as officially).
    head = _head(dcn=True, norm_cfg=dict(type='GN', num_groups=1))
    assert isinstance(head.cls_flows[0].gn, nn.GroupNorm)
    conv = head.cls_convs[0]
    assert _weights(conv) == {'conv.weight': (C, C, 3, 3), 'gn.weight': (C, ),
                              'gn.bias': (C, )}


def test_init_is_normal_001_for_every_tower_and_flow_conv():
    head = _head(dcn=True)
    for name, p in head.named_parameters():
        if name.endswith('conv.weight'):
            assert 0.005 < p.std().item() < 0.02, name
        if name.endswith('conv.bias') and 'retina_cls' not in name:
            assert p.abs().max() == 0, name


def test_wrong_number_of_levels_is_a_clear_error():
    with pytest.raises(ValueError, match='num_outs'):
        _head()(_feats()[:4])


@pytest.mark.parametrize('kwargs,match', [
    (dict(with_flows=False, dcn=True), 'with_flows'),
    (dict(num_panoptic_levels=6), 'num_panoptic_levels'),
    (dict(stacked_convs=0), 'stacked_convs'),
    (dict(dcn=True, norm_cfg=GN), 'cannot divide'),
])
def test_bad_head_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _head(**kwargs)


def test_in_channels_must_equal_feat_channels():
    with pytest.raises(ValueError, match='in_channels == feat_channels'):
        SpatialFlowHead(num_classes=3, in_channels=32, feat_channels=16)


# ------------------------------------------------------------------ post-processing

def test_candidates_before_nms_are_mmdetection_v2s():
    """Per level the nms_pre anchors with the best max-class score, then every
    (anchor, class) pair above score_thr (official mmdet v2.3 get_bboxes +
    multiclass_nms), not mmdet 3's nms_pre best pairs."""
    from mmdet.models.dense_heads import RetinaHead
    from mmengine.config import ConfigDict
    head = _head().eval()
    torch.manual_seed(3)
    sizes = [(6, 5), (3, 3)]
    cls = [torch.randn(NUM_ANCHORS * NUM_CLASSES, h, w) * 2 for h, w in sizes]
    box = [torch.randn(NUM_ANCHORS * 4, h, w) * 0.1 for h, w in sizes]
    priors = [head.prior_generator.single_level_grid_priors(size, level, device='cpu')
              for level, size in enumerate(sizes)]
    meta = dict(img_shape=(48, 40), scale_factor=(1., 1.))
    cfg = ConfigDict(nms_pre=20, score_thr=0.3, min_bbox_size=-1,
                     nms=dict(type='nms', iou_threshold=0.4), max_per_img=100)
    # The per-image step itself (ours overrides mmdet's protected one): the public
    # predict_by_feat would add the anchor generation and batching around it.
    got = head._predict_by_feat_single(cls, box, [None, None], priors, meta, cfg,
                                       with_nms=False)
    want_boxes, want_scores, want_labels = [], [], []
    for c, b, p in zip(cls, box, priors):
        s = c.permute(1, 2, 0).reshape(-1, NUM_CLASSES).sigmoid()
        d = b.permute(1, 2, 0).reshape(-1, 4)
        top = s.max(1).values.topk(20).indices
        boxes = head.bbox_coder.decode(p[top], d[top], max_shape=(48, 40))
        for a in range(20):
            for k in range(NUM_CLASSES):
                if s[top[a], k] > 0.3:
                    want_boxes.append(boxes[a])
                    want_scores.append(s[top[a], k])
                    want_labels.append(k)
    assert got.labels.tolist() == want_labels
    assert torch.equal(got.scores, torch.stack(want_scores))
    assert torch.equal(got.bboxes, torch.stack(want_boxes))
    # mmdet 3's selection keeps at most 20 pairs per level: fewer candidates.
    mmdet3 = RetinaHead._predict_by_feat_single(head, cls, box, [None, None], priors,
                                                meta, cfg, with_nms=False)
    assert len(mmdet3) <= 40 < len(got)
