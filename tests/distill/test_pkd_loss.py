"""PKDLoss math, against an independent float64 computation."""
import pytest
import torch
import torch.nn.functional as F

from mmext.distill import PKDLoss


def pearson_loss_float64(student, teacher, unbiased=True):
    """mean over channels of (1 - Pearson r), r over M = N*H*W, in float64.

    With MMRazor's unbiased std each term is scaled by (M - 1) / M."""
    s = student.detach().double().transpose(0, 1).flatten(1)
    t = teacher.detach().double().transpose(0, 1).flatten(1)
    r = torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(s, t)])
    m = s.shape[1]
    return ((m - 1) / m if unbiased else 1.0) * (1 - r).mean().item()


def mmrazor_pkd_float64(preds_s, preds_t, loss_weight=1.0):
    """MMRazor's PKDLoss.forward (mmrazor/models/losses/pkd_loss.py, 90c7af1f),
    transcribed in float64: resize the student to the teacher, per channel
    (x - mean) / (x.std() + 1e-6) with the unbiased std, MSE / 2, summed, weighted."""
    def norm(feat):
        n, c, h, w = feat.shape
        feat = feat.permute(1, 0, 2, 3).reshape(c, -1)
        mean = feat.mean(dim=-1, keepdim=True)
        std = feat.std(dim=-1, keepdim=True)
        return ((feat - mean) / (std + 1e-6)).reshape(c, n, h, w).permute(1, 0, 2, 3)

    total = 0.
    for pred_s, pred_t in zip(preds_s, preds_t):
        pred_s, pred_t = pred_s.detach().double(), pred_t.detach().double()
        if pred_s.shape[2] != pred_t.shape[2]:
            pred_s = F.interpolate(pred_s, pred_t.shape[2:], mode='bilinear')
        total += F.mse_loss(norm(pred_s), norm(pred_t)).item() / 2
    return total * loss_weight


@pytest.fixture
def pair():
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(3, 8, 6, 7, generator=gen)
    # Correlated but not identical, with very different per-channel scales/offsets.
    student = 0.6 * teacher + 0.8 * torch.randn(3, 8, 6, 7, generator=gen)
    student = student * torch.linspace(0.1, 50, 8).view(1, 8, 1, 1) + 3.0
    return student, teacher


def test_equals_mmrazors_formula_on_maps_of_different_sizes():
    """Three levels of different sizes (one resized), weight 6: MMRazor's value to
    float rounding, including the (M - 1) / M of the unbiased std (M = 2 at the
    smallest level, where it halves the loss)."""
    gen = torch.Generator().manual_seed(7)
    shapes_t = [(2, 5, 16, 20), (2, 5, 3, 4), (1, 5, 1, 2)]
    shapes_s = [(2, 5, 8, 10), (2, 5, 3, 4), (1, 5, 1, 2)]
    teachers = [torch.randn(s, generator=gen) * 3 + 1 for s in shapes_t]
    students = [torch.randn(s, generator=gen) * 0.5 - 2 for s in shapes_s]
    students[1] = students[1] + teachers[1]  # a correlated level
    got = PKDLoss(loss_weight=6.0)(students, teachers).item()
    want = mmrazor_pkd_float64(students, teachers, loss_weight=6.0)
    assert got == pytest.approx(want, rel=1e-5)
    # the unbiased std matters here: the population std gives another value
    pop = PKDLoss(loss_weight=6.0, unbiased=False)(students, teachers).item()
    assert abs(pop - want) > 1e-2 * want


def test_equals_one_minus_pearson(pair):
    student, teacher = pair
    got = PKDLoss(loss_weight=1.0)(student, teacher).item()
    assert got == pytest.approx(pearson_loss_float64(student, teacher), abs=1e-5)
    assert 0.2 < got < 1.0  # a real correlation, not a trivial value
    # population std: exactly mean_c(1 - r_c)
    assert PKDLoss(unbiased=False)(student, teacher).item() == pytest.approx(
        pearson_loss_float64(student, teacher, unbiased=False), abs=1e-5)


def test_loss_weight_and_levels_sum(pair):
    student, teacher = pair
    one = PKDLoss(loss_weight=1.0)(student, teacher)
    assert PKDLoss(loss_weight=6.0)(student, teacher).item() == pytest.approx(
        6 * one.item(), rel=1e-6)
    two = PKDLoss(loss_weight=1.0)((student, student[:, :, :3]), (teacher, teacher[:, :, :3]))
    assert two.item() == pytest.approx(
        one.item() + pearson_loss_float64(student[:, :, :3], teacher[:, :, :3]), abs=1e-5)


def test_invariant_to_positive_per_channel_affine(pair):
    student, teacher = pair
    loss = PKDLoss()
    base = loss(student, teacher).item()
    gen = torch.Generator().manual_seed(3)
    scale = torch.rand(1, 8, 1, 1, generator=gen) * 10 + 0.05
    shift = torch.randn(1, 8, 1, 1, generator=gen) * 20
    assert loss(student * scale + shift, teacher).item() == pytest.approx(base, abs=1e-5)
    assert loss(student, teacher * scale - shift).item() == pytest.approx(base, abs=1e-5)


def test_zero_for_identical_and_affine_copies(pair):
    _, teacher = pair
    scale = torch.linspace(0.5, 4, 8).view(1, 8, 1, 1)
    assert PKDLoss()(teacher, teacher).item() == pytest.approx(0, abs=1e-6)
    assert PKDLoss()(teacher * scale + 7, teacher).item() == pytest.approx(0, abs=1e-5)
    # A negative scale is perfect anti-correlation: (1 - (-1)) (M - 1) / M.
    m = teacher.numel() // teacher.shape[1]
    assert PKDLoss()(-teacher, teacher).item() == pytest.approx(2 * (m - 1) / m, abs=1e-5)


def test_constant_and_zero_channels_are_finite(pair):
    student, teacher = pair
    student = student.clone()
    student[:, 0] = 0.0    # all-zero channel (dead ReLU)
    student[:, 1] = 3.25   # constant channel
    teacher = teacher.clone()
    teacher[:, 2] = -1.0   # constant teacher channel
    student.requires_grad_(True)
    loss = PKDLoss(loss_weight=6.0)(student, teacher)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(student.grad).all()
    # a constant channel standardises to exactly 0, as MMRazor's (x - mean) / (0 + eps)
    assert loss.item() == pytest.approx(
        mmrazor_pkd_float64([student], [teacher], loss_weight=6.0), rel=1e-5)
    # all zero both sides: standardised maps are all zero -> loss 0
    zeros = torch.zeros(2, 4, 5, 5, requires_grad=True)
    loss = PKDLoss()(zeros, torch.zeros(2, 4, 5, 5))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(zeros.grad).all()
    # a single value per channel (1 image, 1x1 map): std taken as 0, not NaN
    one = torch.randn(1, 4, 1, 1, requires_grad=True)
    loss = PKDLoss()(one, torch.randn(1, 4, 1, 1))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(one.grad).all()


def test_float16_inputs_use_float32_statistics():
    gen = torch.Generator().manual_seed(1)
    teacher = torch.randn(2, 4, 8, 8, generator=gen)
    student = teacher + 0.5 * torch.randn(2, 4, 8, 8, generator=gen)
    # Large offsets: x**2 overflows float16 (max 65504), so float16 statistics would
    # give inf/NaN; float32 statistics do not.
    s16, t16 = (student * 4 + 1000).half(), (teacher * 4 - 900).half()
    loss = PKDLoss()(s16, t16)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(pearson_loss_float64(s16, t16), abs=1e-4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss_bf16 = PKDLoss()(student.bfloat16(), teacher.bfloat16())
    assert loss_bf16.dtype == torch.float32
    assert loss_bf16.item() == pytest.approx(
        pearson_loss_float64(student.bfloat16(), teacher.bfloat16()), abs=1e-4)


def test_resize_rule():
    gen = torch.Generator().manual_seed(2)
    student = torch.randn(2, 4, 5, 6, generator=gen)
    teacher = torch.randn(2, 4, 10, 12, generator=gen)
    up = F.interpolate(student, size=(10, 12), mode='bilinear', align_corners=False)
    down = F.interpolate(teacher, size=(5, 6), mode='bilinear', align_corners=False)
    assert PKDLoss()(student, teacher).item() == pytest.approx(
        pearson_loss_float64(up, teacher), abs=1e-5)
    assert PKDLoss(resize='teacher')(student, teacher).item() == pytest.approx(
        pearson_loss_float64(student, down), abs=1e-5)


def test_gradients_reach_the_student_only(pair):
    student, teacher = (t.clone().requires_grad_(True) for t in pair)
    PKDLoss()(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_channel_mismatch_is_an_error():
    with pytest.raises(ValueError, match='channel'):
        PKDLoss()(torch.randn(1, 3, 4, 4), torch.randn(1, 5, 4, 4))


def test_resize_is_mmrazors_student_up_to_teacher():
    # The authors' pairing: a stride-8 student map against a stride-4 teacher map.
    # MMRazor's PKDLoss (resize_stu=True) calls F.interpolate(student, teacher size,
    # mode='bilinear') (align_corners=False), then standardises both.
    from mmext.distill import match_size
    gen = torch.Generator().manual_seed(5)
    student = torch.randn(2, 3, 13, 17, generator=gen)
    teacher = torch.randn(2, 3, 25, 34, generator=gen)
    s, t = match_size(student, teacher, 'student')
    assert s.shape == (2, 3, 25, 34) and t is teacher
    assert torch.equal(s, F.interpolate(student, size=(25, 34), mode='bilinear',
                                        align_corners=False))
    s, t = match_size(student, teacher, 'teacher')
    assert t.shape == (2, 3, 13, 17) and s is student


def test_loss_name():
    assert PKDLoss().loss_name == 'loss_pkd'
