"""FeatureImitationLoss (base of PKDLoss / FeatureMSELoss): loss_weight times the sum
over levels, checked with a weight != 1 on several levels of different sizes."""
import pytest
import torch
import torch.nn.functional as F

from mmext.distill import FeatureMSELoss, PKDLoss

WEIGHT = 6.0  # the paper's PKD weight: any value != 1 tells "every level" from "one"


def mmrazor_pkd_level(student, teacher):
    """One level of MMRazor's PKDLoss, transcribed (float64): per channel over N*H*W,
    (x - mean) / (unbiased std + 1e-6); MSE of the two standardised maps / 2."""

    def norm(feat):
        feat = feat.double().transpose(0, 1).flatten(1)
        mean = feat.mean(dim=-1, keepdim=True)
        std = feat.std(dim=-1, keepdim=True)
        return (feat - mean) / (std + 1e-6)

    return (F.mse_loss(norm(student), norm(teacher)) / 2).item()


def _levels():
    """Three (student, teacher) pairs of different sizes and correlations; every map
    has N*H*W >= 20000 values per channel, so that population and unbiased variance
    differ by less than 5e-5 relatively (the test holds for either)."""
    gen = torch.Generator().manual_seed(0)
    pairs = []
    for (h, w), mix in (((100, 100), 0.3), ((80, 130), 0.6), ((120, 90), 0.9)):
        teacher = torch.randn(2, 2, h, w, generator=gen)
        noise = torch.randn(2, 2, h, w, generator=gen)
        student = (mix * teacher + (1 - mix) * noise) * 4.0 + 1.5
        pairs.append((student, teacher))
    return pairs


def test_pkd_weight_applies_to_every_level():
    """PKDLoss(6) on three levels == 6 x the sum of MMRazor's per-level values."""
    pairs = _levels()
    per_level = [mmrazor_pkd_level(s, t) for s, t in pairs]
    assert len({round(v, 3) for v in per_level}) == 3  # the levels really differ
    got = PKDLoss(loss_weight=WEIGHT)(tuple(s for s, _ in pairs),
                                      tuple(t for _, t in pairs)).item()
    assert got == pytest.approx(WEIGHT * sum(per_level), rel=1e-4)
    two = PKDLoss(loss_weight=WEIGHT)((pairs[1][0], pairs[2][0]),
                                      (pairs[1][1], pairs[2][1])).item()
    assert two == pytest.approx(WEIGHT * (per_level[1] + per_level[2]), rel=1e-4)


def test_mse_weight_applies_to_every_level():
    """FeatureMSELoss(2.5) on two levels of different sizes == 2.5 x the sum of the
    per-level mean squared errors."""
    gen = torch.Generator().manual_seed(1)
    student = (torch.randn(2, 3, 4, 5, generator=gen),
               torch.randn(2, 3, 7, 3, generator=gen))
    teacher = (torch.randn(2, 3, 4, 5, generator=gen) + 2,
               torch.randn(2, 3, 7, 3, generator=gen))
    expected = sum(((s.double() - t.double())**2).mean().item()
                   for s, t in zip(student, teacher))
    assert FeatureMSELoss(loss_weight=2.5)(student, teacher).item() == pytest.approx(
        2.5 * expected, rel=1e-5)
