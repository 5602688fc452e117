"""LaUOffsetBranch: the authors' two-branch layout, counts, init, options."""
import math

import pytest
import torch

import mmext  # noqa: F401
from mmext.seg import LaUConfigError, LaUOffsetBranch


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_authors_branch_parameter_count_is_the_papers():
    # EncNet-R50: C_in 512, C' 128, k 4: 2 x (512*128 + 128*16*9) = 167,936 (+0.16 M).
    branch = LaUOffsetBranch(512, mid_channels=128, scale_factor=4)
    assert _count(branch) == 2 * (512 * 128 + 128 * 16 * 9) == 167936
    assert all(m.bias is None for m in branch.modules() if isinstance(m, torch.nn.Conv2d))
    # The shared option: one 1x1 and one 3x3 predicting dy and dx together.
    shared = LaUOffsetBranch(512, mid_channels=128, scale_factor=4, shared=True)
    assert _count(shared) == 512 * 128 + 128 * 2 * 16 * 9 == 102400


@pytest.mark.parametrize('shared', [False, True])
@pytest.mark.parametrize('k,groups', [(4, 1), (3, 2), (2, 3)])
def test_output_shape(k, groups, shared):
    branch = LaUOffsetBranch(16, mid_channels=8, scale_factor=k, groups=groups,
                             shared=shared)
    out = branch(torch.randn(2, 16, 5, 7))
    assert out.shape == (2, 2 * groups, 5 * k, 7 * k)
    assert branch.out_channels == 2 * groups


def test_dy_and_dx_come_from_their_own_branch():
    k, g = 2, 2
    branch = LaUOffsetBranch(1, mid_channels=1, scale_factor=k, groups=g)
    with torch.no_grad():
        for conv in (branch.offset_y[0], branch.offset_x[0]):
            conv.weight.fill_(1.0)
        branch.offset_y[2].weight.zero_()
        branch.offset_x[2].weight.zero_()
        # offset_y's channel g*k*k + r*k + s -> dy of group g at sub-pixel (r, s):
        # dy_1 = 3 at (1, 0); offset_x: dx_0 = 5 at (0, 1).
        branch.offset_y[2].weight[1 * k * k + 1 * k + 0, 0, 1, 1] = 3.0
        branch.offset_x[2].weight[0 * k * k + 0 * k + 1, 0, 1, 1] = 5.0
    out = branch(torch.ones(1, 1, 2, 2))  # channels [dy_0, dx_0, dy_1, dx_1]
    assert out[0, 2, 1::2, 0::2].eq(3).all() and out[0, 1, 0::2, 1::2].eq(5).all()
    out[0, 2, 1::2, 0::2] = 0
    out[0, 1, 0::2, 1::2] = 0
    assert out.abs().max() == 0


def test_xavier_init_like_the_authors():
    torch.manual_seed(0)
    branch = LaUOffsetBranch(512, mid_channels=128, scale_factor=4)
    for seq in (branch.offset_y, branch.offset_x):
        for conv in (seq[0], seq[2]):
            w = conv.weight
            fan_in = w.shape[1] * w[0, 0].numel()
            fan_out = w.shape[0] * w[0, 0].numel()
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert w.abs().max() <= bound
            # Uniform on [-b, b]: std b / sqrt(3).
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert branch.offset_y[1].negative_slope == 0.01
    # The two branches are independent draws, and init_weights re-draws (not zeros).
    assert not torch.equal(branch.offset_y[0].weight, branch.offset_x[0].weight)
    branch.init_weights()
    assert branch(torch.randn(1, 512, 3, 3)).abs().max() > 0


def test_zero_init_option_starts_from_zero_offsets():
    branch = LaUOffsetBranch(16, mid_channels=8, init='zeros')
    assert branch(torch.randn(1, 16, 3, 3)).abs().max() == 0
    branch.init_weights()
    assert branch(torch.randn(1, 16, 3, 3)).abs().max() == 0


def test_bad_arguments():
    with pytest.raises(LaUConfigError, match='mid_channels'):
        LaUOffsetBranch(16, mid_channels=0)
    with pytest.raises(LaUConfigError, match='init must be one of'):
        LaUOffsetBranch(16, init='normal')
