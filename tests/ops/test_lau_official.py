"""One offset subgradient everywhere: compiled op == reference == official kernel.

The official LaU kernel (``lau_cuda_kernel.cuh`` at 83822e8, ported in
``official_lau_port.py``) defines the offset gradient at an exact integer
sampling coordinate m as -(the sample's row m interpolated along the other
axis): floor == ceil there and the taps of row ceil(y) are zeroed. With zero
offsets (``init='zeros'``) every k-th output row and column sits on such a
coordinate, so these tests run the real config sizes at zero offsets: stride-8
logits of 480 crops (60 x 60) and 512 crops (64 x 64), k = 4, on CPU and, when
a GPU exists, on CUDA (both kernel families).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmext.ops import location_aware_upsample, location_aware_upsample_reference
from tests.ops.official_lau_port import official_lau_grouped

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
]
# float32: the port runs in float32 like the official scalar_t; the kernels
# sum in another order, so a few ulps of the largest values apart.
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=2e-5)}


@pytest.fixture(autouse=True)
def _ext(lau_ext):
    return lau_ext


def grads(fn, x, off, k, gy):
    x = x.detach().requires_grad_()
    off = off.detach().requires_grad_()
    y = fn(x, off, k)
    gx, goff = torch.autograd.grad(y, (x, off), gy)
    return y, gx, goff


def ext(x, off, k):
    return location_aware_upsample(x, off, k, backend="extension")


def port(x, off, k, gy):
    k_h, k_w = (k, k) if isinstance(k, int) else k
    outs = official_lau_grouped(x.cpu().numpy(), off.cpu().numpy(), k_h, k_w, gy.cpu().numpy())
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in outs)


def make(n, c, h, w, k_h, k_w, g, dtype, device, scale=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    off = torch.randn(n, 2 * g, k_h * h, k_w * w, generator=gen, dtype=torch.float64) * scale
    gy = torch.randn(n, c, k_h * h, k_w * w, generator=gen, dtype=torch.float64)
    return x.to(device, dtype), off.to(device, dtype), gy.to(device, dtype)


def assert_all_close(got, want, dtype, what):
    for name, a, b in zip(("out", "grad_x", "grad_offsets"), got, want):
        torch.testing.assert_close(a.cpu(), b.cpu(), **TOL[dtype], msg=lambda m: f"{what} {name}: {m}")


# ------------------------------------------------ zero offsets, real config sizes
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("hw", [60, 64], ids=lambda s: f"{s}x{s}")
@pytest.mark.parametrize("c,g", [(4, 1), (4, 2)], ids=["C4G1", "C4G2"])
def test_zero_offsets_real_sizes_match_official(device, dtype, hw, c, g):
    x, off, gy = make(1, c, hw, hw, 4, 4, g, dtype, device)
    assert torch.count_nonzero(off) == 0
    want = port(x, off, 4, gy)
    got_ext = grads(ext, x, off, 4, gy)
    got_ref = grads(location_aware_upsample_reference, x, off, 4, gy)
    assert_all_close(got_ext, want, dtype, "compiled vs official")
    assert_all_close(got_ref, want, dtype, "reference vs official")
    # The integer rule is in play: on rows i = 4m (y = m) d/dy = -(row m),
    # which is large, not a difference of neighbours.
    assert want[2][:, 0::2, 0::4].abs().max() > 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("impl", [1, 2], ids=["per_pixel", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_zero_offsets_cuda_kernel_families_match_official(impl, dtype):
    for c, g in ((4, 1), (40, 1), (36, 2)):
        x, off, gy = make(1, c, 60, 60, 4, 4, g, dtype, "cuda", seed=c)
        y = torch.ops.mmext_testing.lau_forward_impl(x, off, 4, 4, impl)
        gx, goff = torch.ops.mmext_testing.lau_backward_impl(gy, x, off, 4, 4, impl)
        assert_all_close((y, gx, goff), port(x, off, 4, gy), dtype, f"impl {impl} C{c} G{g}")


# ------------------------------------------------------ other offsets, small sizes
CASES = [
    (2, 6, 5, 7, 2, 2, 1),
    (1, 4, 3, 4, 3, 2, 4),
    (2, 6, 4, 3, 1, 1, 3),
    (1, 3, 2, 5, 8, 1, 1),
    (2, 2, 1, 4, 3, 3, 1),  # h == 1
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}C{}h{}w{}k{}x{}G{}".format(*c))
def test_random_offsets_match_official(device, case):
    n, c, h, w, k_h, k_w, g = case
    x, off, gy = make(n, c, h, w, k_h, k_w, g, torch.float64, device, scale=2.0, seed=1)
    want = port(x, off, (k_h, k_w), gy)
    assert_all_close(grads(ext, x, off, (k_h, k_w), gy), want, torch.float64, "compiled")
    assert_all_close(
        grads(location_aware_upsample_reference, x, off, (k_h, k_w), gy), want, torch.float64, "reference"
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}C{}h{}w{}k{}x{}G{}".format(*c))
def test_integer_and_half_offsets_match_official(device, case):
    """Offsets in steps of 1/2 from -2 to size+1: integer coordinates, both
    bounds, and clamped coordinates just past them, at every k-th pixel and
    between (i/k + dy is an integer only where i/k is a multiple of 1/2)."""
    n, c, h, w, k_h, k_w, g = case
    x, _, gy = make(n, c, h, w, k_h, k_w, g, torch.float64, device, seed=2)
    gen = torch.Generator().manual_seed(3)
    hi = max(h, w) + 1
    off = (torch.randint(-4, 2 * hi + 1, (n, 2 * g, k_h * h, k_w * w), generator=gen) / 2.0).to(device)
    off = off.to(torch.float64)
    want = port(x, off, (k_h, k_w), gy)
    assert_all_close(grads(ext, x, off, (k_h, k_w), gy), want, torch.float64, "compiled")
    assert_all_close(
        grads(location_aware_upsample_reference, x, off, (k_h, k_w), gy), want, torch.float64, "reference"
    )


# -------------------------------------- away from integers nothing has changed
def grid_sample_lau(x, off, k):
    """The previous oracle: F.grid_sample(border, align_corners=True). It agrees
    with the op wherever no coordinate is an integer or a bound."""
    n, c, h, w = x.shape
    H, W = k * h, k * w
    y = torch.arange(H, dtype=x.dtype, device=x.device).view(1, H, 1) / k + off[:, 0]
    xx = torch.arange(W, dtype=x.dtype, device=x.device).view(1, 1, W) / k + off[:, 1]
    grid = torch.stack((xx * 2.0 / (w - 1) - 1.0, y * 2.0 / (h - 1) - 1.0), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


@pytest.mark.parametrize("device", DEVICES)
def test_non_integer_coordinates_unchanged(device):
    x, off, gy = make(2, 3, 6, 7, 4, 4, 1, torch.float64, device, scale=1.5, seed=4)
    base_y = torch.arange(24, dtype=torch.float64, device=device).view(1, 24, 1) / 4
    base_x = torch.arange(28, dtype=torch.float64, device=device).view(1, 1, 28) / 4
    coords = (base_y + off[:, 0], base_x + off[:, 1])
    assert not any(bool((p == p.round()).any()) for p in coords)  # no integer coordinate
    want = grads(grid_sample_lau, x, off, 4, gy)
    assert_all_close(grads(ext, x, off, 4, gy), want, torch.float64, "compiled vs grid_sample")
    assert_all_close(
        grads(location_aware_upsample_reference, x, off, 4, gy), want, torch.float64, "reference vs grid_sample"
    )
