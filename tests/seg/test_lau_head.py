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
    with pytest.raises(LaUConfigError, match='dot products of patch and class'):
        MODELS.build(dict(type='LaUHead', head='SegmenterMaskTransformerHead',
                          in_channels=8, channels=8, num_classes=2, num_layers=1,
                          num_heads=2, embed_dims=8))
    with pytest.raises(LaUConfigError, match='loss_decode next to head'):
        MODELS.build(dict(type='LaUHead', head=dict(
            type='FCNHead', in_channels=4, channels=4, num_classes=2,
            loss_decode=dict(type='LaUOffsetGuidedLoss'))))
    with pytest.raises(LaUConfigError, match='lau_base_coords'):
        _lau_head(lau_base_coords='corner')


# -- the classifier is read by hooks on conv_seg: one test per mechanism ----------------
def test_offset_branch_reads_the_feature_before_dropout():
    """Training mode with dropout: the captured feature is the classifier's input before
    the head's dropout (the authors' offset input), its logits are conv_seg's output
    after dropout, and the hooks are gone afterwards."""
    torch.manual_seed(0)
    head = MODELS.build(dict(type='FCNHead', in_channels=16, channels=8, num_convs=1,
                             concat_input=False, num_classes=NUM_CLASSES,
                             dropout_ratio=0.5))
    head.train()
    x = [torch.randn(2, 16, 6, 6)]
    torch.manual_seed(1)
    feat, logits, extra = split_head_forward(head, x)
    torch.manual_seed(1)
    ref = head.forward(x)
    torch.testing.assert_close(logits, ref)
    torch.testing.assert_close(feat, head._forward_feature(x))
    assert not torch.allclose(logits, head.conv_seg(feat))  # dropout was applied
    assert extra == ()
    assert not head.conv_seg._forward_hooks and not head.dropout._forward_hooks


@MODELS.register_module(force=True)
class _ResizeAfterClsSegHead(lau_head_module.BaseDecodeHead):
    """A head whose returned logits are not conv_seg's output (resized after it)."""

    def forward(self, inputs):
        logits = self.cls_seg(self._transform_inputs(inputs))
        return F.interpolate(logits, scale_factor=2.0, mode='bilinear')


def test_logits_changed_after_conv_seg_are_refused_and_hooks_removed():
    model = MODELS.build(dict(type='LaUHead', head='_ResizeAfterClsSegHead',
                              in_channels=16, channels=16, num_classes=NUM_CLASSES))
    with pytest.raises(LaUConfigError, match='no output that is its conv_seg output: '
                                             'its logits are changed after'):
        model.forward([torch.randn(1, 16, 4, 4)])
    assert not model.head.conv_seg._forward_hooks


def test_several_outputs_logits_found_and_extra_losses_are_the_heads_own():
    """DAHead returns (pam_cam, pam, cam): LaU replaces pam_cam (conv_seg's output);
    pam and cam keep DAHead's own losses (bilinear, label resolution)."""
    torch.manual_seed(0)
    cfg = dict(in_channels=16, channels=8, pam_channels=4, num_classes=NUM_CLASSES,
               dropout_ratio=0.0)
    model = MODELS.build(dict(type='LaUHead', head='DAHead', lau_factor=2,
                              loss_decode=dict(type='LaUOffsetGuidedLoss'), **cfg))
    plain = MODELS.build(dict(type='DAHead', **cfg))
    plain.load_state_dict(model.head.state_dict())
    x = [torch.randn(2, 16, 5, 5)]
    out = model.forward(x)
    ref = plain.forward(x)
    assert isinstance(out, tuple) and len(out) == 3
    assert out[0].shape == (2, NUM_CLASSES, 10, 10)
    torch.testing.assert_close(out[1], ref[1])
    torch.testing.assert_close(out[2], ref[2])
    samples = _samples(2, (20, 20))
    losses = model.loss(x, samples, None)
    own = plain.loss(x, samples, None)
    assert set(losses) == {'loss_lau_og', 'acc_seg', 'pam.loss_ce', 'cam.loss_ce'}
    for key in ('pam.loss_ce', 'cam.loss_ce'):
        torch.testing.assert_close(losses[key], own[key])
    model.eval()
    assert model.predict(x, [dict(img_shape=(20, 20))], None).shape == (2, 6, 20, 20)


def test_cascade_head_gets_prev_output():
    """OCRHead (the last stage of OCRNet): forward / loss / predict take prev_output,
    and the logits LaU upsamples are OCRHead's own forward output."""
    torch.manual_seed(0)
    cfg = dict(in_channels=16, channels=8, ocr_channels=8, num_classes=NUM_CLASSES,
               dropout_ratio=0.0)
    model = MODELS.build(dict(type='LaUHead', head='OCRHead', lau_factor=4, **cfg))
    model.eval()
    x = [torch.randn(2, 16, 5, 6)]
    prev = torch.randn(2, NUM_CLASSES, 5, 6)
    feat, logits, _ = split_head_forward(model.head, x, prev)
    torch.testing.assert_close(logits, model.head.forward(x, prev))
    assert feat.shape == (2, 8, 5, 6)
    assert model.forward(x, prev).shape == (2, NUM_CLASSES, 20, 24)
    with pytest.raises(TypeError, match='prev_output'):
        model.forward(x)
    model.train()
    losses = model.loss(x, prev, _samples(2, (40, 48)), None)
    assert torch.isfinite(losses['loss_ce'])
    model.eval()
    pred = model.predict(x, prev, [dict(img_shape=(40, 48))], None)
    assert pred.shape == (2, NUM_CLASSES, 40, 48)


def test_traceable_and_exportable():
    """No Python-side state survives a call: torch.jit.trace (the TorchScript ONNX
    exporter) and torch.export non-strict (the dynamo ONNX exporter's capture) record
    the LaU graph and give the eager output; no hook is left behind."""
    torch.manual_seed(0)
    model = _lau_head('ASPPHead')
    model.eval()
    x = torch.randn(1, 16, 5, 5)

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, t):
            return self.m([t])

    wrapped = Wrap(model)
    traced = torch.jit.trace(wrapped, x)
    torch.testing.assert_close(traced(x), wrapped(x))
    exported = torch.export.export(wrapped, (x, ), strict=False)
    torch.testing.assert_close(exported.module()(x), wrapped(x))
    assert not model.head.conv_seg._forward_hooks


def test_head_loss_list_missing_is_named():
    """DDRHead's loss_by_feat indexes loss_decode[1] (its spatial output): without
    lau_head_loss_decode the error says which key to set; with it the term is kept."""
    cfg = dict(in_channels=16, channels=8, num_classes=NUM_CLASSES)
    x = (torch.randn(2, 8, 6, 6), torch.randn(2, 16, 6, 6))
    model = MODELS.build(dict(type='LaUHead', head='DDRHead', **cfg))
    with pytest.raises(LaUConfigError, match='lau_head_loss_decode'):
        model.loss(x, _samples(2, (24, 24)), None)
    ce = dict(type='CrossEntropyLoss')
    model = MODELS.build(dict(type='LaUHead', head='DDRHead',
                              lau_head_loss_decode=[ce, ce], **cfg))
    # (DDRHead passes no ignore_index to its losses: no ignored pixels here.)
    losses = model.loss(x, _samples(2, (24, 24), ignore_frac=0.0), None)
    assert set(losses) == {'loss_ce', 'acc_seg', 'loss_spatial'}
