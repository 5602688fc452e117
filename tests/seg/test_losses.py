"""Location-aware losses (Eq. 3, Eq. 4): values on hand-computed examples.

Every expected number below is written from closed-form cross-entropies of two-class
logits, CE = log(1 + exp(z_other - z_label)), and the official normalisation
(LaU-reg/encoding/nn/customize.py): means over ALL pixels, ignored ones counting 0.
"""
import math
from types import SimpleNamespace

import pytest
import torch

import mmext  # noqa: F401  (registers the modules)
from mmseg.registry import MODELS

from mmext.ops import location_aware_upsample
from mmext.seg import (LaUConfigError, LaUContext, base_offsets, offset_guided_loss,
                       regression_loss, regression_targets)

A = math.log1p(math.exp(-2.0))  # CE of (2, 0) for label 0 / (0, 2) for label 1
B = math.log1p(math.exp(2.0))   # CE of (0, 2) for label 0 / (2, 0) for label 1
L2 = math.log(2.0)               # CE of a tie (1, 1)


def _logits(pairs):
    """[(z0, z1), ...] -> (1, 2, 1, len) logits of one row of pixels."""
    return torch.tensor(pairs, dtype=torch.float64).t()[None, :, None, :]


# -- Eq. 3 ---------------------------------------------------------------------------
def test_offset_guided_loss_value():
    lam = 0.3
    label = torch.tensor([[[0, 1, 0, 255]]])
    lau = _logits([(3, 0), (0, 2), (1, 1), (9, -9)])
    plain = _logits([(1, 0), (0, 4), (1, 1), (0, 0)])
    ce = [math.log1p(math.exp(-3)), math.log1p(math.exp(-2)), L2]
    # pixel 0: LaU better -> 1; pixel 1: LaU worse -> 1 + lambda; pixel 2: tie -> 1
    # (official: 1 + lambda only where LaU is strictly worse); pixel 3: ignored,
    # counts 0 in the numerator and 1 in the denominator (torch.mean over all).
    expected = (ce[0] + (1 + lam) * ce[1] + ce[2] + 0.0) / 4
    got = offset_guided_loss(lau, label, plain, lambda_=lam, ignore_index=255)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.22668507, rel=1e-6)
    # avg_non_ignore (not the paper's): over the 3 labelled pixels.
    got = offset_guided_loss(lau, label, plain, lam, 255, avg_non_ignore=True)
    assert got.item() == pytest.approx(expected * 4 / 3, rel=1e-12)
    # The ignored pixel's logits do not matter.
    lau2 = lau.clone()
    lau2[..., 3] = torch.tensor([-50.0, 50.0], dtype=lau.dtype)[:, None]
    assert offset_guided_loss(lau2, label, plain, lam).item() == \
        pytest.approx(expected, rel=1e-12)
    # All ignored: 0, not NaN.
    assert offset_guided_loss(lau, torch.full_like(label, 255), plain, lam).item() == 0
    # Gradient flows into the LaU output only, with the per-pixel weights.
    lau_g = lau.clone().requires_grad_(True)
    plain_g = plain.clone().requires_grad_(True)
    offset_guided_loss(lau_g, label, plain_g, lam).backward()
    assert plain_g.grad is None
    # d/dz1 of CE at pixel 1 (label 1, logits (0, 2)) = p1 - 1, times 1.3 / 4.
    p1 = 1 / (1 + math.exp(-2))
    assert lau_g.grad[0, 1, 0, 1].item() == pytest.approx((p1 - 1) * 1.3 / 4, rel=1e-9)


def test_class_and_pixel_weights_scale_each_pixel():
    """class_weight (w[label]) and the pixel sampler's weight multiply each pixel's
    term, the mean still over all pixels (as mmseg's CrossEntropyLoss); the 1 + lambda
    choice is unchanged (both CEs of a pixel get the same weight)."""
    lam = 0.3
    label = torch.tensor([[[0, 1, 0, 255]]])
    lau = _logits([(3, 0), (0, 2), (1, 1), (9, -9)])
    plain = _logits([(1, 0), (0, 4), (1, 1), (0, 0)])
    ce = [math.log1p(math.exp(-3)), math.log1p(math.exp(-2)), L2]
    class_weight = torch.tensor([1.0, 3.0], dtype=torch.float64)
    pixel = torch.tensor([[[2.0, 0.5, 1.0, 7.0]]], dtype=torch.float64)
    expected = (ce[0] + 3 * 1.3 * ce[1] + ce[2]) / 4
    got = offset_guided_loss(lau, label, plain, lam, class_weight=class_weight)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    expected = (2 * ce[0] + 0.5 * 1.3 * ce[1] + ce[2] + 7 * 0) / 4
    got = offset_guided_loss(lau, label, plain, lam, weight=pixel)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # The module: class_weight from its config, the pixel weight as mmseg passes it.
    og = MODELS.build(dict(type='LaUOffsetGuidedLoss', lambda_=lam, class_weight=[1, 3],
                           loss_weight=2.0))
    ctx = SimpleNamespace(plain_upsample=lambda: plain)  # all Eq. 3 reads of it
    expected = (2 * ce[0] + 0.5 * 3 * 1.3 * ce[1] + ce[2]) / 4
    assert og(lau, label, weight=pixel, lau_ctx=ctx).item() == pytest.approx(
        2 * expected, rel=1e-12)


# -- Eq. 4 ---------------------------------------------------------------------------
def _reg_example():
    """A 1x2 map of 2-class logits, k=2 (-> 2x4), paper base grid, one offset dx=2."""
    logits = torch.zeros(1, 2, 1, 2, dtype=torch.float64)
    logits[0, :, 0, 0] = torch.tensor([2.0, 0.0])  # column 0 says class 0
    logits[0, :, 0, 1] = torch.tensor([0.0, 2.0])  # column 1 says class 1
    offsets = torch.zeros(1, 2, 2, 4, dtype=torch.float64)
    offsets[0, 1, 0, 0] = 2.0  # dx of output pixel (0, 0): column 0 + 2 (clamped to 1)
    offsets.requires_grad_(True)
    by, bx = base_offsets(1, 2, 2, 'paper', False, dtype=torch.float64)
    ctx = LaUContext(logits, offsets, by, bx, 2, 1)
    up = location_aware_upsample(logits, ctx.full_offsets(), 2)
    label = torch.tensor([[[0, 0, 0, 255], [0, 1, 1, 0]]])
    return up, label, ctx


def test_regression_candidates_by_hand():
    up, label, ctx = _reg_example()
    t = regression_targets(up, label, ctx)
    # Base coordinates: rows (0, 0.5), columns (0, 0.5, 1, 1.5); corners lt, lb, rt, rb
    # = (floor, floor), (ceil, floor), (floor, ceil), (ceil, ceil), clamped to the map.
    # (0,0): LaU samples column 1 -> (0, 2) -> CE B; lt (2, 0) -> A: lt (index 1).
    # (0,1): LaU (1, 1) -> log 2; lt (2, 0) -> A; lb ties lt: the first (lt) wins.
    # (1,1): label 1; LaU log 2; lt, lb (2, 0) -> B; rt (0, 2) -> A: rt (index 3).
    # Elsewhere every candidate ties LaU (or the pixel is ignored): LaU (index 0).
    assert t['index'].tolist() == [[[1, 1, 0, 0], [0, 3, 0, 0]]]
    assert t['target'][0, 0, :, 0, 0].tolist() == [0.0, 0.0]
    assert t['target'][0, 0, :, 0, 1].tolist() == [0.0, 0.0]
    assert t['target'][0, 0, :, 1, 1].tolist() == [0.0, 1.0]
    # Where LaU wins the target is the (unclamped) prediction: no pull.
    assert t['target'][0, 0, :, 1, 3].tolist() == [0.5, 1.5]
    assert t['candidate_ce'][0, 0, 0, 0].item() == pytest.approx(B, rel=1e-12)
    assert t['candidate_ce'][1, 0, 0, 0].item() == pytest.approx(A, rel=1e-12)


def test_regression_loss_terms_by_hand():
    lam, gamma = 0.3, 0.1
    up, label, ctx = _reg_example()
    terms = regression_loss(up, label, ctx, lam, gamma, return_terms=True)
    # CE term: weights 1.3 at (0,0), (0,1), (1,1) (a corner is strictly better), else
    # 1; ignored (0,3) is 0; mean over the 8 pixels.
    #   row 0: 1.3*B, 1.3*log2, B (tie), 0 ; row 1: A, 1.3*log2, A, B
    ce = (1.3 * B + 1.3 * L2 + B + 0 + A + 1.3 * L2 + A + B) / 8
    assert terms['ce'].item() == pytest.approx(ce, rel=1e-12)
    assert ce == pytest.approx(1.13436264, rel=1e-7)
    # SmoothL1 (beta 1) of (predicted - target) over (N, G, 2, H, W) = 16 elements:
    # (0,0) column 2 - 0 = 2 -> 1.5; (0,1) column 0.5 -> 0.125;
    # (1,1) row 0.5 -> 0.125 and column 0.5 - 1 -> 0.125. Mean 1.875 / 16.
    assert terms['smooth_l1'].item() == pytest.approx(1.875 / 16, rel=1e-12)
    total = regression_loss(up, label, ctx, lam, gamma)
    assert total.item() == pytest.approx(ce + gamma * 1.875 / 16, rel=1e-12)
    assert total.item() == pytest.approx(1.14608139, rel=1e-7)
    # avg_non_ignore (not the paper's): 7 labelled pixels, 14 coordinates.
    terms = regression_loss(up, label, ctx, lam, gamma, avg_non_ignore=True,
                            return_terms=True)
    assert terms['ce'].item() == pytest.approx(ce * 8 / 7, rel=1e-12)
    assert terms['smooth_l1'].item() == pytest.approx(1.875 / 14, rel=1e-12)


def test_regression_loss_gradient_on_offsets():
    gamma = 0.1
    up, label, ctx = _reg_example()
    total = regression_loss(up, label, ctx, 0.3, gamma)
    grad, = torch.autograd.grad(total, ctx.offsets, retain_graph=True)
    # SmoothL1 part of d/d(dx) at (0, 0): gamma * sign(2) / 16; LaU's own sample there
    # is clamped (column 2 > 1), so the CE part adds nothing.
    assert grad[0, 1, 0, 0].item() == pytest.approx(gamma / 16, rel=1e-9)
    # At (1, 1) the row offset is pulled down by gamma * 0.5 / 16 through SmoothL1.
    terms = regression_loss(up, label, ctx, 0.3, gamma, return_terms=True)
    g_smooth, = torch.autograd.grad(terms['smooth_l1'], ctx.offsets)
    assert g_smooth[0, 0, 1, 1].item() == pytest.approx(0.5 / 16, rel=1e-9)
    assert g_smooth[0, 1, 1, 1].item() == pytest.approx(-0.5 / 16, rel=1e-9)


def test_loss_modules_match_functions():
    up, label, ctx = _reg_example()
    reg = MODELS.build(dict(type='LaURegressionLoss', lambda_=0.3, gamma=0.1,
                            loss_weight=2.0))
    assert reg.loss_name == 'loss_lau_reg'
    got = reg(up, label, ignore_index=255, lau_ctx=ctx)
    assert got.item() == pytest.approx(2 * 1.14608139, rel=1e-7)
    og = MODELS.build(dict(type='LaUOffsetGuidedLoss', lambda_=0.3))
    expected = offset_guided_loss(up, label, ctx.plain_upsample(), 0.3)
    assert og(up, label, lau_ctx=ctx).item() == pytest.approx(expected.item(), rel=1e-12)


def test_regression_loss_class_weight():
    """Eq. 4 with class_weight: each CE term times w[label]; same candidates, so the
    SmoothL1 term is unchanged."""
    up, label, ctx = _reg_example()
    reg = MODELS.build(dict(type='LaURegressionLoss', lambda_=0.3, gamma=0.1,
                            class_weight=[1.0, 2.0]))
    # test_regression_loss_terms_by_hand, with the label-1 pixels (1,1), (1,2) x 2.
    ce = (1.3 * B + 1.3 * L2 + B + 0 + A + 2 * 1.3 * L2 + 2 * A + B) / 8
    expected = ce + 0.1 * 1.875 / 16
    assert reg(up, label, ignore_index=255, lau_ctx=ctx).item() == pytest.approx(
        expected, rel=1e-12)


@pytest.mark.parametrize('loss', ['LaUOffsetGuidedLoss', 'LaURegressionLoss'])
def test_location_aware_loss_in_a_plain_head(loss):
    import mmext.seg.losses as losses_module
    assert 'sys' not in vars(losses_module)  # no call-stack walking any more
    head = MODELS.build(dict(type='FCNHead', in_channels=4, channels=4, num_convs=1,
                             concat_input=False, num_classes=2,
                             loss_decode=dict(type=loss)))
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(LaUConfigError, match="type='LaUHead'"):
        head.loss([torch.randn(1, 4, 4, 4)], [sample], None)


def test_bad_loss_arguments():
    with pytest.raises(LaUConfigError, match='lambda_'):
        MODELS.build(dict(type='LaUOffsetGuidedLoss', lambda_=-1))
    with pytest.raises(LaUConfigError, match='gamma'):
        MODELS.build(dict(type='LaURegressionLoss', gamma=-0.1))
