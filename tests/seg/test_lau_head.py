"""LaUHead: a plain registered wrapper (no generated classes, no hidden state) that
puts LaU on any decode head; feature split, base grid, losses, prediction, bad input."""
import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

import mmext  # noqa: F401  (registers the modules)
import mmext.seg.lau_head as lau_head_module
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmext.seg import LaUConfigError, LaUHead, split_head_forward

NUM_CLASSES = 6
HEADS = {
    'FCNHead': dict(num_convs=1, concat_input=False),
    'ASPPHead': dict(dilations=(1, 2)),
    'PSPHead': dict(pool_scales=(1, 2)),
}


def _samples(n, size, num_classes=NUM_CLASSES, ignore_frac=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        label = torch.randint(0, num_classes, (1, *size), generator=g)
        label[torch.rand(1, *size, generator=g) < ignore_frac] = 255
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=size, pad_shape=size, ori_shape=size))
        out.append(s)
    return out


def _lau_head(head='FCNHead', **kwargs):
    cfg = dict(type='LaUHead', head=head, in_channels=16, channels=8,
               num_classes=NUM_CLASSES, **HEADS.get(head, {}))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _enc_head_cfg(**kwargs):
    cfg = dict(in_channels=[8, 16], in_index=(0, 1), channels=8, num_codes=4,
               use_se_loss=True, num_classes=NUM_CLASSES,
               loss_se_decode=dict(type='CrossEntropyLoss', use_sigmoid=True,
                                   loss_weight=0.2))
    cfg.update(kwargs)
    return cfg


def test_plain_registered_class():
    assert MODELS.get('LaUHead') is LaUHead
    names = set(vars(lau_head_module))
    model = _lau_head('ASPPHead')
    _lau_head('PSPHead')
    assert type(model) is LaUHead and set(vars(lau_head_module)) == names
    assert type(model.head).__name__ == 'ASPPHead'
    # Picklable and copyable (EMA, checkpoints of whole modules).
    assert type(pickle.loads(pickle.dumps(model))) is LaUHead
    copy.deepcopy(model)


def test_no_state_kept_between_calls():
    model = _lau_head('FCNHead')
    state = {k: v for k, v in vars(model).items() if not k.startswith('_modules')}
    x = [torch.randn(2, 16, 5, 5)]
    model.forward(x)
    model.loss(x, _samples(2, (40, 40)), None)
    model.eval()
    model.predict(x, [dict(img_shape=(40, 40))], None)
    after = {k: v for k, v in vars(model).items() if not k.startswith('_modules')}
    after['training'] = True
    assert after.keys() == state.keys()
    assert all(after[k] is state[k] or after[k] == state[k] for k in state)


@pytest.mark.parametrize('head,cfg', [
    ('FCNHead', dict(in_channels=16, channels=8, **HEADS['FCNHead'])),
    ('ASPPHead', dict(in_channels=16, channels=8, **HEADS['ASPPHead'])),
    ('PSPHead', dict(in_channels=16, channels=8, **HEADS['PSPHead'])),
    ('EncHead', _enc_head_cfg()),
    ('EncHead', _enc_head_cfg(add_lateral=True, use_se_loss=False)),
    ('DepthwiseSeparableASPPHead', dict(in_channels=16, channels=8, c1_in_channels=8,
                                        c1_channels=4, dilations=(1, 2))),
])
def test_split_equals_the_heads_own_forward(head, cfg):
    torch.manual_seed(0)
    model = MODELS.build(dict(type=head, num_classes=NUM_CLASSES,
                              **{k: v for k, v in cfg.items() if k != 'num_classes'}))
    model.eval()
    if head in ('EncHead', 'DepthwiseSeparableASPPHead'):
        # EncHead: in_index (0, 1); DeepLabV3+: ASPP on inputs[-1], c1 on inputs[0].
        x = [torch.randn(2, 8, 12, 12), torch.randn(2, 16, 6, 6)]
    else:
        x = [torch.randn(2, 16, 6, 6)]
    feat, logits, extra = split_head_forward(model, x)
    ref = model.forward(x)
    ref = ref if isinstance(ref, tuple) else (ref, )
    torch.testing.assert_close(logits, ref[0])
    assert len(extra) == len(ref) - 1
    for a, b in zip(extra, ref[1:]):
        torch.testing.assert_close(a, b)
    assert feat.shape[1] == model.channels and feat.shape[-2:] == logits.shape[-2:]


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('head', ['FCNHead', 'ASPPHead', 'PSPHead'])
def test_zero_offsets_with_interpolate_grid_is_plain_interpolation(head, align_corners):
    # The options of ours: zero-initialised branch + 'interpolate' base grid.
    torch.manual_seed(0)
    model = _lau_head(head, align_corners=align_corners, lau_factor=4,
                      lau_base_coords='interpolate',
                      lau_offset_branch=dict(init='zeros'))
    model.init_weights()
    model.eval()
    x = [torch.randn(2, 16, 6, 5)]
    up = model.forward(x)
    plain = F.interpolate(model.head.forward(x), size=(24, 20), mode='bilinear',
                          align_corners=align_corners)
    torch.testing.assert_close(up, plain, atol=1e-5, rtol=1e-5)
    pred = model.predict(x, [dict(img_shape=(48, 40), pad_shape=(48, 40))], None)
    assert pred.shape == (2, NUM_CLASSES, 48, 40)


def test_paper_grid_samples_i_over_k():
    # Default: the paper's grid; with zero learned offsets output row i = row i/k.
    model = _lau_head('FCNHead', lau_factor=2, lau_offset_branch=dict(init='zeros'))
    model.eval()
    x = [torch.randn(1, 16, 3, 4)]
    logits = model.head.forward(x)
    up = model.forward(x)
    torch.testing.assert_close(up[..., ::2, ::2], logits)
    torch.testing.assert_close(up[..., 1, 1], logits[..., :2, :2].mean((-1, -2)))
    torch.testing.assert_close(up[..., -1, -1], logits[..., -1, -1])  # clamped


def test_authors_offsets_are_used_and_trained():
    torch.manual_seed(0)
    model = _lau_head('ASPPHead', loss_decode=dict(type='LaURegressionLoss'))
    model.init_weights()
    x = [torch.randn(2, 16, 6, 6)]
    up, ctx, _ = model.lau_forward(x)
    assert ctx.offsets.abs().max() > 0  # Xavier: not zero at the start
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.offset_branch.offset_x[0].weight.detach().clone()
    losses = model.loss(x, _samples(2, (48, 48)), None)
    assert set(losses) == {'loss_lau_reg', 'acc_seg'}
    opt.zero_grad()
    losses['loss_lau_reg'].backward()
    opt.step()
    assert not torch.equal(before, model.offset_branch.offset_x[0].weight)


def test_loss_is_at_lau_resolution_against_nearest_label():
    model = _lau_head('FCNHead', dropout_ratio=0.0,
                      loss_decode=dict(type='CrossEntropyLoss'))
    x = [torch.randn(1, 16, 5, 5)]
    samples = _samples(1, (40, 40))
    losses = model.loss(x, samples, None)
    up, _, _ = model.lau_forward(x)
    label = F.interpolate(samples[0].gt_sem_seg.data[None].float(), size=(20, 20),
                          mode='nearest').long()[:, 0]
    expected = F.cross_entropy(up, label, ignore_index=255, reduction='none').mean()
    torch.testing.assert_close(losses['loss_ce'], expected)


def test_pixel_sampler_weights_reach_the_loss():
    """With the head's pixel sampler (OHEM) the losses get its per-pixel weights,
    computed on the LaU output against the resized label (every other test has no
    sampler, i.e. weight None)."""
    torch.manual_seed(0)
    model = _lau_head('FCNHead', dropout_ratio=0.0, lau_factor=2,
                      sampler=dict(type='OHEMPixelSampler', thresh=0.01, min_kept=10),
                      loss_decode=dict(type='CrossEntropyLoss'))
    x = [torch.randn(2, 16, 4, 5)]
    samples = _samples(2, (8, 10))
    losses = model.loss(x, samples, None)
    up, _, _ = model.lau_forward(x)
    label = torch.stack([s.gt_sem_seg.data for s in samples])  # already 8x10
    weight = model.head.sampler.sample(up, label)
    assert weight.sum().item() == 2 * 10  # OHEM keeps the min_kept x N hardest pixels
    ce = F.cross_entropy(up, label[:, 0], ignore_index=255, reduction='none')
    torch.testing.assert_close(losses['loss_ce'], (ce * weight).mean())


def test_enc_head_se_loss_is_enchead_own():
    torch.manual_seed(0)
    cfg = _enc_head_cfg()
    model = MODELS.build(dict(type='LaUHead', head='EncHead',
                              loss_decode=dict(type='LaUOffsetGuidedLoss'), **cfg))
    plain = MODELS.build(dict(type='EncHead', **cfg))
    plain.load_state_dict(model.head.state_dict())
    x = [torch.randn(2, 8, 6, 6), torch.randn(2, 16, 6, 6)]
    samples = _samples(2, (48, 48))
    losses = model.loss(x, samples, None)
    assert {'loss_lau_og', 'loss_se', 'acc_seg'} == set(losses)
    torch.testing.assert_close(losses['loss_se'], plain.loss(x, samples, None)['loss_se'])
    model.eval()
    assert model.predict(x, [dict(img_shape=(48, 48))], None).shape == (2, 6, 48, 48)


def test_state_dict_layout():
    model = _lau_head('FCNHead')
    keys = set(model.state_dict())
    plain = MODELS.build(dict(type='FCNHead', in_channels=16, channels=8, num_convs=1,
                              concat_input=False, num_classes=NUM_CLASSES))
    assert {f'head.{k}' for k in plain.state_dict()} <= keys
    assert all(k.startswith(('head.', 'offset_branch.')) for k in keys)
    nested = MODELS.build(dict(type='LaUHead', head=dict(
        type='FCNHead', in_channels=16, channels=8, num_convs=1, concat_input=False,
        num_classes=NUM_CLASSES)))
    assert set(nested.state_dict()) == keys


# -- bad input: clear errors at build time -------------------------------------------
def test_offset_branch_not_matching_factor_or_groups():
    with pytest.raises(LaUConfigError, match='scale_factor'):
        _lau_head(lau_factor=4, lau_offset_branch=dict(scale_factor=2))
    with pytest.raises(LaUConfigError, match='groups'):
        _lau_head(lau_groups=2, lau_offset_branch=dict(groups=3))
    with pytest.raises(LaUConfigError, match='in_channels'):
        _lau_head(lau_offset_branch=dict(in_channels=99))


@MODELS.register_module(force=True)
class _WrongOffsetBranch(torch.nn.Module):
    def __init__(self, in_channels, scale_factor, groups, mid_channels=None):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 2 * groups, 1)

    def forward(self, x):  # forgets the upsampling
        return self.conv(x)


def test_custom_offset_branch_with_wrong_output_shape():
    with pytest.raises(LaUConfigError, match=r'\(N, 2G, k\*h, k\*w\)'):
        _lau_head(lau_offset_branch=dict(type='_WrongOffsetBranch'))


def test_groups_must_divide_classes():
    with pytest.raises(LaUConfigError, match='divisor of the number of classes'):
        _lau_head(lau_groups=4)
    assert _lau_head(lau_groups=3).offset_branch.groups == 3


def test_unknown_or_unsupported_head():
    with pytest.raises(LaUConfigError, match='unknown head type'):
        MODELS.build(dict(type='LaUHead', head='NoSuchHead'))
    with pytest.raises(LaUConfigError, match='decode head'):
        MODELS.build(dict(type='LaUHead', head='ResNet', depth=18))
    with pytest.raises(LaUConfigError, match='FEATURE_FUNCTIONS'):
        MODELS.build(dict(type='LaUHead', head='SegformerHead', in_channels=[4, 4],
                          in_index=[0, 1], channels=4, num_classes=2))
    with pytest.raises(LaUConfigError, match='loss_decode next to head'):
        MODELS.build(dict(type='LaUHead', head=dict(
            type='FCNHead', in_channels=4, channels=4, num_classes=2,
            loss_decode=dict(type='LaUOffsetGuidedLoss'))))
    with pytest.raises(LaUConfigError, match='lau_base_coords'):
        _lau_head(lau_base_coords='corner')
