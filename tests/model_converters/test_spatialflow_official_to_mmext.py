"""tools/model_converters/spatialflow_official_to_mmext.py against the official model's
key list, written out here from the official code (chensnathan/SpatialFlow:
mmdet/models/dense_heads/spatialflow_head.py ``_init_layers``,
mmdet/models/stuff_heads/stuff_head.py, mmdet/models/detectors/spatialflow.py, and
mmdetection v2.3's ResNet / FPN / FCNMaskHead), not from our model."""
import importlib.util
import os.path as osp
from typing import Dict, Tuple

import pytest
import torch

import mmext  # noqa: F401
from mmext.utils.errors import UserError
from tests.tool_runner import ROOT, run_tool

_spec = importlib.util.spec_from_file_location(
    'sf_converter', osp.join(ROOT, 'tools/model_converters/spatialflow_official_to_mmext.py'))
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)

Shapes = Dict[str, Tuple[int, ...]]


def _conv_module(prefix: str, out_c: int, in_c: int, k: int, norm: bool) -> Shapes:
    """mmcv ConvModule: bias='auto' (bias only without norm); GN named 'gn'."""
    keys = {f'{prefix}.conv.weight': (out_c, in_c, k, k)}
    if norm:
        keys.update({f'{prefix}.gn.weight': (out_c, ), f'{prefix}.gn.bias': (out_c, )})
    else:
        keys[f'{prefix}.conv.bias'] = (out_c, )
    return keys


def _bn(prefix: str, c: int) -> Shapes:
    return {f'{prefix}.weight': (c, ), f'{prefix}.bias': (c, ),
            f'{prefix}.running_mean': (c, ), f'{prefix}.running_var': (c, ),
            f'{prefix}.num_batches_tracked': ()}


def official_resnet(depth: int, dcn: bool) -> Shapes:
    """mmdet v2.3 ResNet (pytorch style); DCN = mmcv's ModulatedDeformConv2dPack in
    conv2 of stages 2-4 (conv_offset: 27 channels), no conv bias."""
    blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    expansion = 1 if depth == 18 else 4
    keys = {'backbone.conv1.weight': (64, 3, 7, 7), **_bn('backbone.bn1', 64)}
    inplanes = 64
    for stage, num in enumerate(blocks):
        planes = 64 * 2 ** stage
        for b in range(num):
            p = f'backbone.layer{stage + 1}.{b}'
            if expansion == 1:
                keys[f'{p}.conv1.weight'] = (planes, inplanes, 3, 3)
                keys.update(_bn(f'{p}.bn1', planes))
                keys[f'{p}.conv2.weight'] = (planes, planes, 3, 3)
                keys.update(_bn(f'{p}.bn2', planes))
            else:
                keys[f'{p}.conv1.weight'] = (planes, inplanes, 1, 1)
                keys.update(_bn(f'{p}.bn1', planes))
                keys[f'{p}.conv2.weight'] = (planes, planes, 3, 3)
                if dcn and stage > 0:
                    keys[f'{p}.conv2.conv_offset.weight'] = (27, planes, 3, 3)
                    keys[f'{p}.conv2.conv_offset.bias'] = (27, )
                keys.update(_bn(f'{p}.bn2', planes))
                keys[f'{p}.conv3.weight'] = (planes * 4, planes, 1, 1)
                keys.update(_bn(f'{p}.bn3', planes * 4))
            if b == 0 and (stage > 0 or inplanes != planes * expansion):
                keys[f'{p}.downsample.0.weight'] = (planes * expansion, inplanes, 1, 1)
                keys.update(_bn(f'{p}.downsample.1', planes * expansion))
            inplanes = planes * expansion
    return keys


def official_fpn(in_channels, out_c: int) -> Shapes:
    """FPN, start_level=1, add_extra_convs='on_input', num_outs=5."""
    keys = {}
    for i, c in enumerate(in_channels[1:]):
        keys.update(_conv_module(f'neck.lateral_convs.{i}', out_c, c, 1, False))
        keys.update(_conv_module(f'neck.fpn_convs.{i}', out_c, out_c, 3, False))
    keys.update(_conv_module('neck.fpn_convs.3', out_c, in_channels[-1], 3, False))
    keys.update(_conv_module('neck.fpn_convs.4', out_c, out_c, 3, False))
    return keys


def official_head(classes: int, feat: int, stacked: int, dcn: bool, norm: bool) -> Shapes:
    """SpatialFlowHead._init_layers: towers, the four flow lists, retina_cls/reg.
    DCN (dcn_cls/stuff_convs_idx=[0..3], dcn_mask_convs_idx=[0]): the tower conv is
    a ModulatedDeformConv2d (same weight shape, same bias rule) and its flow conv
    outputs 3 * 9 channels."""
    keys = {}
    flow_out = 27 if dcn else feat
    for i in range(stacked):
        for tower in ('cls', 'reg', 'stuff'):
            keys.update(_conv_module(f'bbox_head.{tower}_convs.{i}', feat, feat, 3, norm))
        keys.update(_conv_module(f'bbox_head.cls_spatial_flow_convs.{i}', flow_out, feat,
                                 3, norm))
        keys.update(_conv_module(f'bbox_head.stuff_spatial_flow_convs.{i}', flow_out,
                                 feat, 3, norm))
    keys.update(_conv_module('bbox_head.mask_convs.0', feat, feat, 3, norm))
    keys.update(_conv_module('bbox_head.mask_spatial_flow_convs.0', flow_out, feat, 3,
                             norm))
    keys.update(_conv_module('bbox_head.stuff_mask_flow_convs.0', feat, feat, 3, norm))
    keys.update({'bbox_head.retina_cls.weight': (9 * classes, feat, 3, 3),
                 'bbox_head.retina_cls.bias': (9 * classes, ),
                 'bbox_head.retina_reg.weight': (36, feat, 3, 3),
                 'bbox_head.retina_reg.bias': (36, )})
    return keys


def official_mask_head(classes: int, c: int, num_convs: int) -> Shapes:
    """FCNMaskHead: convs, upsample (deconv 2x2), conv_logits."""
    keys = {}
    for i in range(num_convs):
        keys.update(_conv_module(f'mask_head.convs.{i}', c, c, 3, False))
    keys.update({'mask_head.upsample.weight': (c, c, 2, 2), 'mask_head.upsample.bias': (c, ),
                 'mask_head.conv_logits.weight': (classes, c, 1, 1),
                 'mask_head.conv_logits.bias': (classes, )})
    return keys


def official_stuff_head(channels: int, in_c: int, inner: int) -> Shapes:
    """StuffHead: lateral_convs[l] = Sequential(ConvModule+GN, Upsample, ...) with
    l + 1 blocks for strides 8, 16, 32; conv = 1x1 to stuff_num_classes."""
    keys = {}
    for level in range(3):
        for j in range(level + 1):
            keys.update(_conv_module(f'stuff_head.lateral_convs.{level}.{2 * j}', inner,
                                     in_c if j == 0 else inner, 3, True))
    keys.update({'stuff_head.conv.weight': (channels, inner, 1, 1),
                 'stuff_head.conv.bias': (channels, )})
    return keys


def official_coco(depth: int, dcn: bool) -> Shapes:
    in_channels = [256, 512, 1024, 2048]
    return {**official_resnet(depth, dcn), **official_fpn(in_channels, 256),
            **official_head(80, 256, 4, dcn, norm=False),
            **official_mask_head(80, 256, 4), **official_stuff_head(54, 256, 128)}


def official_demo() -> Shapes:
    """The official model at the demo config's size (R18, 64 channels, 2 convs per
    tower, GN in the head, 3 things, 3 stuff + things)."""
    return {**official_resnet(18, False), **official_fpn([64, 128, 256, 512], 64),
            **official_head(3, 64, 2, False, norm=True),
            **official_mask_head(3, 64, 2), **official_stuff_head(4, 64, 64)}


def _tagged(shapes: Shapes) -> Dict[str, torch.Tensor]:
    """Official tensor i holds the value i everywhere (a view: no memory)."""
    out = {}
    for i, (key, shape) in enumerate(sorted(shapes.items())):
        if key.endswith('num_batches_tracked'):
            out[key] = torch.tensor(i, dtype=torch.long)
        else:
            out[key] = torch.tensor(float(i), dtype=torch.half).expand(shape)
    return out


@pytest.mark.parametrize('config,depth,dcn', [
    ('configs/spatialflow/spatialflow_r50_fpn_20e_coco.py', 50, False),
    ('configs/spatialflow/spatialflow_r101-dcn_fpn_ms-20e_coco.py', 101, True),
])
def test_every_model_tensor_is_filled_exactly_once(config, depth, dcn):
    shapes = official_coco(depth, dcn)
    official = _tagged(shapes)
    target = conv.build_target_state(osp.join(ROOT, config))
    converted = conv.convert_state_dict(official, target)
    assert set(converted) == set(target)
    sources = {}
    for key, value in converted.items():
        assert value.shape == target[key].shape, key
        assert value.dtype == target[key].dtype, key  # fp16 cast to the model's
        if key == 'stuff_head.conv_logits.weight' or key == 'stuff_head.conv_logits.bias':
            continue  # a constant tensor hides the reordering: tested below
        tags = torch.unique(value.float())
        assert tags.numel() == 1, key
        sources[key] = int(tags)
    # Injective: no official tensor lands on two model tensors.
    assert len(set(sources.values())) == len(sources)
    names = sorted(shapes)
    assert names[sources['bbox_head.cls_flows.2.conv.weight']] == \
        'bbox_head.cls_spatial_flow_convs.2.conv.weight'
    assert names[sources['bbox_head.mask_flow_stuff.conv.bias']] == \
        'bbox_head.stuff_mask_flow_convs.0.conv.bias'
    assert names[sources['mask_branch.mask_head.conv_logits.weight']] == \
        'mask_head.conv_logits.weight'
    if dcn:
        assert target['bbox_head.cls_flows.0.conv.weight'].shape[0] == 27
        assert 'backbone.layer3.22.conv2.conv_offset.weight' in converted


def test_stuff_logits_are_reordered_things_last():
    target = {'stuff_head.conv_logits.weight': torch.zeros(54, 128, 1, 1),
              'stuff_head.conv_logits.bias': torch.zeros(54)}
    official = {'stuff_head.conv.weight': torch.arange(54.).reshape(54, 1, 1, 1).expand(
        54, 128, 1, 1), 'stuff_head.conv.bias': torch.arange(54.)}
    out = conv.convert_state_dict(official, target)
    bias = out['stuff_head.conv_logits.bias']
    # mmext channel s = stuff class s in mmdet's order; 53 = "things" = official 36.
    assert bias[53] == 36
    assert bias[:36].tolist() == list(range(36))
    assert bias[36:53].tolist() == list(range(37, 54))
    assert torch.equal(out['stuff_head.conv_logits.weight'][:, 0, 0, 0], bias)


def test_official_stuff_order_is_mmdets_with_things_other_inserted():
    from mmdet.datasets import CocoPanopticDataset
    classes = CocoPanopticDataset.METAINFO['classes']
    stuff = list(classes[80:])
    official = list(conv.OFFICIAL_COCO_STUFF_CHANNELS)
    official.remove('things-other')
    assert stuff == official


@pytest.mark.parametrize('change,match', [
    (lambda s: s.update({'bbox_head.extra_conv.weight': torch.zeros(1)}),
     r'no place in the model \(1\): bbox_head.extra_conv.weight'),
    (lambda s: s.update({'bbox_head.retina_cls.bias': torch.zeros(9 * 81)}),
     r'shape mismatches \(1\): bbox_head.retina_cls.bias \(729,\)'),
    (lambda s: s.pop('neck.fpn_convs.4.conv.weight'),
     r'does not fill \(1\): neck.fpn_convs.4.conv.weight'),
])
def test_refuses_with_the_offending_keys(change, match):
    official = _tagged(official_coco(50, False))
    change(official)
    target = conv.build_target_state(
        osp.join(ROOT, 'configs/spatialflow/spatialflow_r50_fpn_20e_coco.py'))
    with pytest.raises(UserError, match=match):
        conv.convert_state_dict(official, target)


def test_dcn_checkpoint_refused_by_the_plain_config():
    official = _tagged(official_coco(50, True))
    target = conv.build_target_state(
        osp.join(ROOT, 'configs/spatialflow/spatialflow_r50_fpn_20e_coco.py'))
    with pytest.raises(UserError, match='conv_offset'):
        conv.convert_state_dict(official, target)


def test_converted_checkpoint_loads_in_tools_test(tmp_path):
    """CLI end to end on the demo-sized official model: convert, then
    tools/test.py loads it without missing or unexpected keys."""
    torch.manual_seed(0)
    state = {k: (torch.tensor(0) if k.endswith('num_batches_tracked') else
                 (torch.ones(s) if k.endswith('running_var') else torch.randn(s) * 0.01))
             for k, s in official_demo().items()}
    state['bbox_head.retina_cls.bias'].fill_(-4.6)  # prior 0.01: few detections
    src, dst = tmp_path / 'official.pth', tmp_path / 'mmext.pth'
    torch.save({'meta': {'mmdet_version': '2.3.0'}, 'state_dict': state}, src)
    config = 'configs/demo/spatialflow_r18_demo.py'
    proc = run_tool(['tools/model_converters/spatialflow_official_to_mmext.py', config,
                     str(src), str(dst), '--things-channel', '0'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    # Official channel 0 ("things" here) is mmext's last channel.
    assert torch.equal(saved['stuff_head.conv_logits.bias'][-1],
                       state['stuff_head.conv.bias'][0])
    proc = run_tool(['tools/test.py', config, str(dst), '--work-dir', str(tmp_path / 'w'),
                     '--cfg-options', 'test_dataloader.dataset.indices=4',
                     'val_dataloader.num_workers=0',
                     'val_dataloader.persistent_workers=False',
                     'test_dataloader.num_workers=0',
                     'test_dataloader.persistent_workers=False'])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'coco_panoptic/PQ' in log
    assert 'do not match exactly' not in log
    assert 'missing keys' not in log and 'unexpected key' not in log


def test_missing_source_is_a_clear_error(tmp_path):
    proc = run_tool(['tools/model_converters/spatialflow_official_to_mmext.py',
                     'configs/demo/spatialflow_r18_demo.py', str(tmp_path / 'no.pth'),
                     str(tmp_path / 'out.pth')])
    assert proc.returncode == 2
    assert 'does not exist' in proc.stderr
