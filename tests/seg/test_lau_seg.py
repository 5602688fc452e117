"""LaU for MMSegmentation: offset branch, heads, location-aware losses, bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

import mmext  # noqa: F401  (registers the modules)
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmext.seg import (LaUConfigError, LaUContext, LaUMixin, LaUOffsetBranch,
                       base_offsets, offset_guided_loss, regression_loss,
                       regression_targets)

NUM_CLASSES = 6


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


HEADS = {
    'FCNHead': dict(num_convs=1, concat_input=False),
    'ASPPHead': dict(dilations=(1, 2)),
    'PSPHead': dict(pool_scales=(1, 2)),
}


def _lau_head(head='FCNHead', **kwargs):
    cfg = dict(type='LaUHead', head=head, in_channels=16, channels=8,
               num_classes=NUM_CLASSES, **HEADS.get(head, {}))
    cfg.update(kwargs)
    return MODELS.build(cfg)


# -- offset branch -------------------------------------------------------------------
@pytest.mark.parametrize('k,groups', [(4, 1), (3, 2), (2, 3)])
def test_offset_branch_output_shape(k, groups):
    branch = LaUOffsetBranch(16, mid_channels=8, scale_factor=k, groups=groups)
    out = branch(torch.randn(2, 16, 5, 7))
    assert out.shape == (2, 2 * groups, 5 * k, 7 * k)
    assert branch.out_channels == 2 * groups
    # Starts from zero offsets, also after the segmentor's init_weights.
    assert out.abs().max() == 0
    branch.init_weights()
    assert branch(torch.randn(1, 16, 3, 3)).abs().max() == 0


def test_offset_branch_layout_is_dy_dx_per_group():
    k = 2
    branch = LaUOffsetBranch(1, mid_channels=1, scale_factor=k, groups=2)
    with torch.no_grad():
        branch.reduce.weight.fill_(1.0)
        branch.predict.weight.zero_()
        # PixelShuffle input channel c*k*k + r*k + s -> output channel c at (r, s):
        # make output channel 2 (dy of group 1) equal 1 at sub-pixel (1, 0).
        branch.predict.weight[2 * k * k + 1 * k + 0, 0, 1, 1] = 1.0
    out = branch(torch.ones(1, 1, 2, 2))
    assert out[0, 2, 1::2, 0::2].eq(1).all()
    out[0, 2, 1::2, 0::2] = 0
    assert out.abs().max() == 0


# -- heads ---------------------------------------------------------------------------
@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('head', ['FCNHead', 'ASPPHead', 'PSPHead'])
def test_lau_at_init_is_plain_interpolation(head, align_corners):
    torch.manual_seed(0)
    model = _lau_head(head, align_corners=align_corners, lau_factor=4)
    model.init_weights()
    model.eval()
    x = [torch.randn(2, 16, 6, 5)]
    up = model.forward(x)
    base_cls = type(model).__mro__[2]  # LaU<Head> -> LaUMixin -> <Head>
    logits = base_cls.forward(model, x)
    plain = F.interpolate(logits, size=(24, 20), mode='bilinear',
                          align_corners=align_corners)
    assert up.shape == (2, NUM_CLASSES, 24, 20)
    torch.testing.assert_close(up, plain, atol=1e-5, rtol=1e-5)
    # The prediction is the LaU output resized to the input size.
    pred = model.predict(x, [dict(img_shape=(48, 40), pad_shape=(48, 40))], None)
    assert pred.shape == (2, NUM_CLASSES, 48, 40)


def test_paper_base_coords_are_zero_offsets():
    by, bx = base_offsets(3, 4, 4, 'paper', False)
    assert by.abs().max() == 0 and bx.abs().max() == 0
    by, _ = base_offsets(3, 4, 4, 'interpolate', False)
    torch.testing.assert_close(by, torch.full((12, ), 0.5 / 4 - 0.5))


def test_lau_head_keeps_the_base_head_state_dict():
    plain = MODELS.build(dict(type='FCNHead', in_channels=16, channels=8, num_convs=1,
                              concat_input=False, num_classes=NUM_CLASSES))
    lau = _lau_head('FCNHead')
    extra = set(lau.state_dict()) - set(plain.state_dict())
    assert set(plain.state_dict()) <= set(lau.state_dict())
    assert extra and all(k.startswith('lau_offset_branch.') for k in extra)
    lau.load_state_dict(plain.state_dict(), strict=False)  # a baseline loads
    assert isinstance(lau, LaUMixin)
    # Wrapper style: head=dict(type=...) builds the same class.
    nested = MODELS.build(dict(type='LaUHead', head=dict(
        type='FCNHead', in_channels=16, channels=8, num_convs=1, concat_input=False,
        num_classes=NUM_CLASSES)))
    assert type(nested) is type(lau)


@pytest.mark.parametrize('loss', ['LaUOffsetGuidedLoss', 'LaURegressionLoss'])
def test_lau_head_loss_trains_offsets(loss):
    torch.manual_seed(0)
    model = _lau_head('ASPPHead', loss_decode=dict(type=loss))
    model.init_weights()
    x = [torch.randn(2, 16, 6, 6)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # the zero-initialised last conv moves at step 1, offsets at 2
        losses = model.loss(x, _samples(2, (48, 48)), None)
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        assert torch.isfinite(total)
        opt.zero_grad()
        total.backward()
        opt.step()
    assert model.lau_offset_branch.predict.weight.abs().sum() > 0
    assert model.lau_offset_branch.reduce.weight.grad.abs().sum() > 0


def test_enc_head_with_se_loss():
    model = MODELS.build(dict(
        type='LaUHead', head='EncHead', in_channels=[8, 16], in_index=(0, 1),
        channels=8, num_codes=4, use_se_loss=True, num_classes=NUM_CLASSES,
        loss_decode=dict(type='LaURegressionLoss'),
        loss_se_decode=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.2)))
    x = [torch.randn(2, 8, 6, 6), torch.randn(2, 16, 6, 6)]
    losses = model.loss(x, _samples(2, (48, 48)), None)
    assert {'loss_lau_reg', 'loss_se', 'acc_seg'} <= set(losses)
    model.eval()
    assert model.predict(x, [dict(img_shape=(48, 48))], None).shape == (2, 6, 48, 48)


# -- offset-guided loss (Eq. 3) ------------------------------------------------------
def _ce(logits, label):
    return F.cross_entropy(logits[None, :, None, None], torch.tensor([[[label]]])).item()


def test_offset_guided_loss_hand_made():
    lam = 0.3
    # 4 pixels in a row, 2 classes. Labels: 0, 1, 0, ignore.
    label = torch.tensor([[[0, 1, 0, 255]]])
    lau = torch.tensor([[[[3.0, 0.0, 1.0, 9.0]], [[0.0, 2.0, 1.0, -9.0]]]])
    plain = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]], [[0.0, 4.0, 1.0, 0.0]]]])
    # pixel 0: LaU better (CE x1); pixel 1: LaU worse (x(1+lam)); pixel 2: tie,
    # not strictly better (x(1+lam)); pixel 3: ignored (in neither sum).
    ce = [_ce(lau[0, :, 0, i], int(label[0, 0, i])) for i in range(3)]
    expected = (ce[0] + (1 + lam) * ce[1] + (1 + lam) * ce[2]) / 3
    got = offset_guided_loss(lau, label, plain, lambda_=lam, ignore_index=255)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # lambda = 0 is plain CE (mmseg's CE over the non-ignored pixels).
    plain_ce = F.cross_entropy(lau, label, ignore_index=255)
    assert offset_guided_loss(lau, label, plain, 0.0).item() == \
        pytest.approx(plain_ce.item(), rel=1e-6)
    # The ignored pixel's logits do not matter.
    lau2 = lau.clone()
    lau2[..., 3] = torch.tensor([-50.0, 50.0])[:, None]
    assert offset_guided_loss(lau2, label, plain, lam).item() == \
        pytest.approx(expected, rel=1e-6)
    # All ignored: 0, not NaN.
    assert offset_guided_loss(lau, torch.full_like(label, 255), plain, lam).item() == 0
    # No gradient flows into the bilinear candidate.
    plain_g = plain.clone().requires_grad_(True)
    offset_guided_loss(lau.clone().requires_grad_(True), label, plain_g, lam).backward()
    assert plain_g.grad is None


# -- regression loss (Eq. 4) ---------------------------------------------------------
def _ctx(logits, k, offsets):
    h, w = logits.shape[-2:]
    by, bx = base_offsets(h, w, k, 'paper', False)
    return LaUContext(logits, offsets, by, bx, k, offsets.shape[1] // 2)


def test_regression_target_is_lowest_loss_candidate_and_pulls_offsets():
    from mmext.ops import location_aware_upsample
    k = 2
    # 2x2 map, 2 classes: class 0 is very likely only at (0, 0).
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0, 0, 0], logits[0, 1, 0, 0] = 5.0, -5.0
    offsets = torch.zeros(1, 2, 4, 4, requires_grad=True)
    ctx = _ctx(logits, k, offsets)
    up = location_aware_upsample(logits, ctx.full_offsets(), k)
    label = torch.ones(1, 4, 4, dtype=torch.long)
    label[0, 1, 1] = 0  # output (1, 1) samples (0.5, 0.5): the lt corner (0, 0) wins
    label[0, 0, 0] = 0  # output (0, 0) samples (0, 0) exactly: LaU ties lt, LaU wins
    label[0, 3, 3] = 255
    t = regression_targets(up, label, ctx)
    cand = t['candidate_ce']
    assert torch.equal(t['index'], cand.argmin(0))
    assert t['index'][0, 1, 1] == 1  # lt
    torch.testing.assert_close(t['target'][0, 0, :, 1, 1], torch.tensor([0.0, 0.0]))
    assert t['index'][0, 0, 0] == 0 and t['lau_is_min'][0, 0, 0]
    # Where LaU wins the target is its own coordinate: no SmoothL1 pull there.
    torch.testing.assert_close(t['target'][0, 0, :, 0, 0], ctx.pred_coords()[0, 0, :, 0, 0])
    # CE part: weight 1 where LaU is the min, 1 + lambda elsewhere; ignore excluded.
    lam, gamma = 0.3, 0.1
    terms = regression_loss(up, label, ctx, lam, gamma, return_terms=True)
    ce = F.cross_entropy(up, label, ignore_index=255, reduction='none')
    w = torch.where(t['lau_is_min'], 1.0, 1.0 + lam)
    valid = label != 255
    torch.testing.assert_close(terms['ce'], (w * ce)[valid].sum() / valid.sum())
    total = regression_loss(up, label, ctx, lam, gamma)
    torch.testing.assert_close(total, terms['ce'] + gamma * terms['smooth_l1'])
    # A gradient step on the offsets reduces the SmoothL1 term (toward the target).
    smooth = terms['smooth_l1']
    assert smooth.item() > 0
    grad, = torch.autograd.grad(smooth, offsets)
    assert grad.abs().sum() > 0
    stepped = (offsets - 0.5 * grad).detach()
    after = F.smooth_l1_loss(_ctx(logits, k, stepped).pred_coords(), t['target'],
                             reduction='none').sum(2).mean(1)
    before = F.smooth_l1_loss(ctx.pred_coords().detach(), t['target'],
                              reduction='none').sum(2).mean(1)
    assert after[valid].sum() < before[valid].sum()
    assert after[0, 1, 1] < before[0, 1, 1]


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
    assert _lau_head(lau_groups=3).lau_offset_branch.groups == 3


@pytest.mark.parametrize('loss', ['LaUOffsetGuidedLoss', 'LaURegressionLoss'])
def test_location_aware_loss_without_lau_head(loss):
    with pytest.raises(LaUConfigError, match='needs a LaU head'):
        MODELS.build(dict(type='FCNHead', in_channels=16, channels=8,
                          num_classes=NUM_CLASSES, loss_decode=dict(type=loss)))
    # Called directly without a LaU context: a clear error too.
    standalone = MODELS.build(dict(type=loss))
    with pytest.raises(LaUConfigError, match='lau_ctx'):
        standalone(torch.randn(1, 6, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))


def test_unknown_or_non_head_type():
    with pytest.raises(LaUConfigError, match='unknown head type'):
        MODELS.build(dict(type='LaUHead', head='NoSuchHead'))
    with pytest.raises(LaUConfigError, match='decode head'):
        MODELS.build(dict(type='LaUHead', head='ResNet', depth=18))


def test_math_sanity():
    assert math.isclose(0.5 / 4 - 0.5, -0.375)
