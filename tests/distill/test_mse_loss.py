"""FeatureMSELoss (the MSE feature-imitation baseline of the PKD benchmark)."""
import pytest
import torch
import torch.nn.functional as F

from mmext.distill import FeatureMSELoss


def test_value_weight_levels_and_resize():
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(2, 4, 5, 6, generator=gen) * 3 + 1
    teacher = torch.randn(2, 4, 10, 12, generator=gen)
    up = F.interpolate(student, size=(10, 12), mode='bilinear', align_corners=False)
    expected = ((up.double() - teacher.double())**2).mean().item()
    assert FeatureMSELoss()(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    assert FeatureMSELoss(loss_weight=2.5)(student, teacher).item() == pytest.approx(
        2.5 * expected, rel=1e-5)
    same = torch.randn(2, 4, 5, 6, generator=gen)
    two = FeatureMSELoss()((student, same), (teacher, same + 1))
    assert two.item() == pytest.approx(expected + 1.0, rel=1e-5)
    # unlike PKD, not invariant to the student's scale
    assert FeatureMSELoss()(student * 2, teacher).item() > expected * 1.5


def test_teacher_gets_no_gradient_and_names():
    student = torch.randn(1, 2, 4, 4, requires_grad=True)
    teacher = torch.randn(1, 2, 4, 4, requires_grad=True)
    FeatureMSELoss()(student, teacher).backward()
    assert student.grad is not None and teacher.grad is None
    assert FeatureMSELoss().loss_name == 'loss_mse'
    with pytest.raises(ValueError, match='channel adapter'):
        FeatureMSELoss()(torch.randn(1, 3, 4, 4), torch.randn(1, 5, 4, 4))
    with pytest.raises(ValueError, match='resize'):
        FeatureMSELoss(resize='both')
