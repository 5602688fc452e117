"""tools/model_converters/encoding_resnet_to_mmseg.py against a port of the official
backbone.

``OfficialResNet`` below is WRITTEN BY HAND from a reading of the official code at
HolmesShuan/Location-aware-Upsampling-for-Semantic-Segmentation 83822e8,
LaU-reg/encoding/dilated/resnet.py: ``Bottleneck`` (L58-L107), ``ResNet.__init__``
with ``deep_base=True`` (L135-L175: the 64-64-128 ``conv1`` Sequential, ``bn1``,
``inplanes=128``, layer3/4 dilated 2/4 at stride 1 for ``--dilated``), and
``_make_layer`` (L185-L209: 1x1 strided conv + BN downsample, the first block of a
dilation-2 layer at dilation 1 and of a dilation-4 layer at 2). Its ``state_dict()``
has the names and shapes of PyTorch-Encoding's ImageNet ``resnet50`` (later
``resnet50s``) checkpoint, which the official ``resnet50()`` (L253-L264) loads.
It is not derived from mmseg's model, so a wrong mapping shows up here; a misreading
of the official code would not.
"""
import os.path as osp
from typing import Dict

import pytest
import torch
import torch.nn as nn

from mmext.utils.errors import UserError
from tests.tool_runner import ROOT, load_tool, run_tool

conv = load_tool('tools/model_converters/encoding_resnet_to_mmseg.py')
D8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True)


class OfficialBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class OfficialResNet(nn.Module):
    """dilated/resnet.py ``ResNet(Bottleneck, layers, dilated=True, deep_base=True)``
    (output_size=8), with the ImageNet classifier ``fc``."""

    def __init__(self, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 128
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, 3, stride=1, padding=1, bias=False))
        self.bn1 = nn.BatchNorm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], dilation=2)
        self.layer4 = self._make_layer(512, layers[3], dilation=4)
        self.avgpool = nn.AvgPool2d(7, stride=1)
        self.fc = nn.Linear(2048, num_classes)

    def _make_layer(self, planes, blocks, stride=1, dilation=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))
        first = {1: 1, 2: 1, 4: 2}[dilation]
        layers = [OfficialBottleneck(self.inplanes, planes, stride, first, downsample)]
        self.inplanes = planes * 4
        layers += [OfficialBottleneck(self.inplanes, planes, dilation=dilation)
                   for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stem(self, x):
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def trunk(self, x):
        """``BaseNet.base_forward`` without JPU (encoding/models/base.py L54-L67)."""
        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return c1, c2, c3, self.layer4(c3)


LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN affine and statistics (conv weights keep their random init)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) * 0.5 + 0.5
            m.bias.data = torch.randn(c, generator=g) * 0.1
            m.running_mean = torch.randn(c, generator=g) * 0.1
            m.running_var = torch.rand(c, generator=g) + 0.5
            m.num_batches_tracked.fill_(7)
    return model.eval()


def _mmseg_backbone(depth=50, **kw):
    from mmseg.models.backbones import ResNetV1c
    return ResNetV1c(depth=depth, stem_channels=128, **D8, **kw)


def _shapes(build, *args, **kw) -> Dict[str, torch.Tensor]:
    """``state_dict()`` of a model built on the meta device: names, shapes and
    dtypes without memory or init time."""
    with torch.device('meta'):
        return build(*args, **kw).state_dict()


def _official_state(depth=50) -> Dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return _randomized(OfficialResNet(LAYERS[depth])).state_dict()


def _tagged(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official tensor i holds the value i everywhere (a view: no memory)."""
    return {k: (torch.tensor(i) if k.endswith('num_batches_tracked') else
                torch.tensor(float(i)).expand(v.shape))
            for i, (k, v) in enumerate(sorted(state.items()))}


def test_port_has_the_official_resnet50s_names_and_shapes():
    state = _shapes(OfficialResNet, LAYERS[50])
    expected = {
        'conv1.0.weight': (64, 3, 3, 3), 'conv1.1.running_var': (64, ),
        'conv1.3.weight': (64, 64, 3, 3), 'conv1.4.weight': (64, ),
        'conv1.6.weight': (128, 64, 3, 3), 'bn1.weight': (128, ),
        'layer1.0.conv1.weight': (64, 128, 1, 1),
        'layer1.0.downsample.0.weight': (256, 128, 1, 1),
        'layer1.0.downsample.1.running_mean': (256, ),
        'layer2.0.conv2.weight': (128, 128, 3, 3),
        'layer2.0.downsample.0.weight': (512, 256, 1, 1),
        'layer3.5.conv3.weight': (1024, 256, 1, 1),
        'layer4.2.bn3.bias': (2048, ), 'fc.weight': (1000, 2048), 'fc.bias': (1000, )}
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert 'conv1.2.weight' not in state and 'layer1.1.downsample.0.weight' not in state
    # 55 convs (3 stem, 16 blocks x 3, 4 downsample), 55 BNs (5 tensors each), fc (2).
    assert len(state) == 55 + 55 * 5 + 2


@pytest.mark.parametrize('depth', [50, 101])
def test_every_official_tensor_is_placed_exactly_once(depth):
    official = _tagged(_shapes(OfficialResNet, LAYERS[depth]))
    target = _shapes(_mmseg_backbone, depth)
    assert conv.detect_depth(official) == depth
    converted, zero_filled = conv.convert_state_dict(official, target)
    assert zero_filled == []
    assert set(converted) == set(target)
    names = sorted(official)
    placed = {}
    for key, value in converted.items():
        assert value.shape == target[key].shape and value.dtype == target[key].dtype
        tag = value.flatten()[0]
        assert bool((value == tag).all()), key
        placed[key] = names[int(tag)]
    # Injective and onto everything but the classifier.
    assert len(set(placed.values())) == len(placed)
    assert set(official) - set(placed.values()) == {'fc.weight', 'fc.bias'}
    assert placed['stem.0.weight'] == 'conv1.0.weight'
    assert placed['stem.4.running_var'] == 'conv1.4.running_var'
    assert placed['stem.6.weight'] == 'conv1.6.weight'
    assert placed['stem.7.bias'] == 'bn1.bias'
    assert placed['layer3.0.downsample.1.weight'] == 'layer3.0.downsample.1.weight'
    assert all(k == v for k, v in placed.items() if k.startswith('layer'))


def test_forward_matches_the_official_port():
    """Eval-mode stem and all four stages of the D8 trunk, same random weights."""
    official = _randomized(OfficialResNet(LAYERS[50]))
    ours = _mmseg_backbone(out_indices=(0, 1, 2, 3))
    converted, _ = conv.convert_state_dict(official.state_dict(), ours.state_dict())
    ours.load_state_dict(converted, strict=True)
    ours.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        stem_official = official.stem(x)
        stem_ours = ours.maxpool(ours.stem(x))
        assert stem_ours.shape == (1, 128, 16, 16)
        torch.testing.assert_close(stem_ours, stem_official, rtol=1e-5, atol=1e-5)
        for c_ours, c_official, channels, size in zip(
                ours(x), official.trunk(x), (256, 512, 1024, 2048), (16, 8, 8, 8)):
            assert c_ours.shape == (1, channels, size, size)  # D8: stride 4, 8, 8, 8
            scale = c_official.abs().max()
            torch.testing.assert_close(c_ours / scale, c_official / scale,
                                       rtol=1e-4, atol=1e-5)


def test_legacy_checkpoint_without_bn_counters_converts():
    """PyTorch < 0.4.1 saved no ``num_batches_tracked``: written as 0."""
    official = {k: v for k, v in _official_state().items()
                if not k.endswith('num_batches_tracked')}
    target = _mmseg_backbone().state_dict()
    converted, zero_filled = conv.convert_state_dict(official, target)
    assert set(converted) == set(target)
    assert len(zero_filled) == 55 and 'stem.7.num_batches_tracked' in zero_filled
    assert int(converted['stem.7.num_batches_tracked']) == 0


@pytest.mark.parametrize('change,match', [
    (lambda s: s.update({'conv1.7.weight': torch.zeros(1)}),
     r'no place in the backbone \(1\): conv1.7.weight\. '),
    (lambda s: s.update({'layer4.3.conv1.weight': torch.zeros(1)}),
     r'no place in the backbone \(1\): layer4.3.conv1.weight'),
    (lambda s: s.update({'conv1.6.weight': torch.zeros(64, 64, 3, 3)}),
     r'shape mismatches \(1\): conv1.6.weight \(64, 64, 3, 3\)'),
    (lambda s: s.pop('layer2.0.downsample.0.weight'),
     r'does not fill \(1\): layer2.0.downsample.0.weight'),
])
def test_refuses_with_the_offending_keys(change, match):
    official = _shapes(OfficialResNet, LAYERS[50])
    change(official)
    with pytest.raises(UserError, match=match):
        conv.convert_state_dict(official, _shapes(_mmseg_backbone))


def test_torchvision_resnet_is_refused():
    """A 7x7-stem ResNet (torchvision / mmseg v1b names) has no 64-64-128 stem."""
    official = _shapes(OfficialResNet, LAYERS[50])
    for key in [k for k in official if k.startswith('conv1.')]:
        official.pop(key)
    official['conv1.weight'] = torch.zeros(64, 3, 7, 7)
    with pytest.raises(UserError, match=r'no place in the backbone \(1\): conv1.weight'):
        conv.convert_state_dict(official, _shapes(_mmseg_backbone))


def test_cli_output_is_the_configs_pretrained_backbone(tmp_path):
    """Convert with the tool, then the ADE20K reproduction config's backbone loads it
    through its ``init_cfg`` (Pretrained) with every tensor equal."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    official = _official_state()
    src, dst = tmp_path / 'resnet50-25c4b509.pth', tmp_path / 'out' / 'r50s_mmseg.pth'
    torch.save(official, src)  # the model store serves a bare state dict
    proc = run_tool(['tools/model_converters/encoding_resnet_to_mmseg.py',
                     str(src), str(dst)], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ResNetV1c-50 (stem 64-64-128)' in proc.stdout
    assert 'dropped fc.weight, fc.bias' in proc.stdout
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert saved['meta']['backbone'] == dict(type='ResNetV1c', depth=50,
                                             stem_channels=128)
    assert not any(k.startswith('backbone.') for k in saved['state_dict'])
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/lau/encnet_r50-d8_4xb4-227k_ade20k-480x480_bilinear.py'))
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.backbone.init_cfg.checkpoint = str(dst)
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    state = backbone.state_dict()
    assert torch.equal(state['stem.7.running_var'], official['bn1.running_var'])
    for key, value in official.items():
        if not key.startswith('fc.'):
            assert torch.equal(state[conv.map_key(key)], value), key


def test_missing_source_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr('sys.argv', ['encoding_resnet_to_mmseg.py',
                                     str(tmp_path / 'no.pth'), str(tmp_path / 'out.pth')])
    with pytest.raises(UserError, match=r'does not exist .*resnet50-25c4b509\.zip'):
        conv.main()
    assert not (tmp_path / 'out.pth').exists()
