"""CUDA only: both kernel families of the LaU op against the grid_sample reference.

The test-only ops ``torch.ops.mmext_testing.lau_forward_impl`` /
``lau_backward_impl`` (outside the public ``mmext`` namespace) take an ``impl``
argument (0 = automatic choice, 1 = per-pixel kernels, 2 = channels-last
kernels); the public op uses 0: per-pixel forward, channels-last backward
when a group has at least 16 channels. Each family is checked on shapes that stress it: channel
counts that are not multiples of 32 (partial warp chunks), several chunks,
groups, H*W not a multiple of the 32-pixel tile, far-outside and non-finite
offsets, channels_last inputs and every dtype.
"""
from __future__ import annotations

import pytest
import torch

from mmext.ops import location_aware_upsample_reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

PER_PIXEL, CHANNELS_LAST = 1, 2
IMPLS = pytest.mark.parametrize("impl", [PER_PIXEL, CHANNELS_LAST], ids=["per_pixel", "channels_last"])

# (N, C, h, w, k_h, k_w, G, offset scale)
CASES = [
    (2, 40, 5, 7, 2, 2, 1, 1.5),  # Cg=40: one full + one partial chunk; HW=140 (partial tile)
    (1, 36, 3, 4, 3, 2, 2, 2.0),  # Cg=18, k_h != k_w
    (2, 64, 4, 3, 1, 1, 1, 1.0),  # k=1, two full chunks
    (1, 33, 2, 5, 8, 1, 3, 3.0),  # Cg=11, large k_h
    (1, 20, 3, 3, 4, 5, 2, 50.0),  # far outside (clamping)
    (2, 32, 1, 4, 3, 3, 1, 1.0),  # h == 1
    (1, 4, 3, 4, 3, 2, 4, 2.0),  # G == C (Cg=1)
    (2, 70, 16, 16, 4, 4, 1, 1.5),  # several tiles per row, three chunks
]


def _cuda_ext():
    from mmext.ops import _extension

    if not _extension.load_extension() or not _extension.has_kernel_for(torch.device("cuda")):
        pytest.fail(f"CUDA kernels not available: {_extension.extension_state().error}")


@pytest.fixture(scope="module", autouse=True)
def _ext():
    _cuda_ext()


def make(n, c, h, w, k_h, k_w, g, scale, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    off = torch.randn(n, 2 * g, k_h * h, k_w * w, generator=gen, dtype=torch.float64) * scale
    gy = torch.randn(n, c, k_h * h, k_w * w, generator=gen, dtype=torch.float64)
    return x.cuda().to(dtype), off.cuda().to(dtype), gy.cuda().to(dtype)


def run_impl(x, off, gy, k, impl):
    y = torch.ops.mmext_testing.lau_forward_impl(x, off, k[0], k[1], impl)
    gx, goff = torch.ops.mmext_testing.lau_backward_impl(gy, x, off, k[0], k[1], impl)
    return y, gx, goff


def run_ref(x, off, gy, k):
    x = x.detach().requires_grad_()
    off = off.detach().requires_grad_()
    y = location_aware_upsample_reference(x, off, k)
    gx, goff = torch.autograd.grad(y, (x, off), gy)
    return y, gx, goff


@IMPLS
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_float64_matches_reference(case, impl):
    n, c, h, w, k_h, k_w, g, scale = case
    x, off, gy = make(n, c, h, w, k_h, k_w, g, scale)
    got = run_impl(x, off, gy, (k_h, k_w), impl)
    want = run_ref(x, off, gy, (k_h, k_w))
    for name, a, b in zip(("out", "grad_x", "grad_off"), got, want):
        assert a.shape == b.shape and a.dtype == b.dtype and a.is_contiguous(), name
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=lambda m: f"{name}: {m}")


@IMPLS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_low_precision(dtype, impl):
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    # k = (4, 2): base coordinates are exact in float32 (see test_lau.py).
    x, off, gy = make(2, 48, 6, 5, 4, 2, 2, 1.5, dtype=dtype)
    got = run_impl(x, off, gy, (4, 2), impl)
    want = run_ref(x.double(), off.double(), gy.double(), (4, 2))
    for name, a, b in zip(("out", "grad_x", "grad_off"), got, want):
        assert a.dtype == dtype, name
        err = (a.double() - b).abs().max().item()
        assert err <= tol * (1.0 + b.abs().max().item()), f"{name} {dtype}: max error {err}"


@IMPLS
def test_nonfinite_offsets(impl):
    x, off, gy = make(1, 24, 3, 4, 2, 2, 2, 2.0)
    off[0, 0, 0, 0] = float("inf")
    off[0, 1, 1, 1] = -float("inf")
    off[0, 2, 2, 3] = 1e30
    off[0, 3, 3, 2] = float("nan")
    off[0, 0, 5, 7] = float("nan")
    y, gx, goff = run_impl(x, off, gy, (2, 2), impl)
    yr, gxr, goffr = run_ref(x, off, gy, (2, 2))
    assert torch.isnan(y[0, 12:, 3, 2]).all() and torch.isnan(y[0, :12, 5, 7]).all()
    assert torch.isnan(y).sum() == 24
    torch.testing.assert_close(y, yr, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert torch.isfinite(gx).all() and torch.isfinite(goff).all()
    assert goff[0, 2, 3, 2] == 0 and goff[0, 3, 3, 2] == 0 and goff[0, 0, 5, 7] == 0 and goff[0, 1, 5, 7] == 0
    torch.testing.assert_close(gx, gxr, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(goff, goffr, rtol=1e-12, atol=1e-12)


@IMPLS
def test_channels_last_and_strided_inputs(impl):
    x, off, gy = make(2, 40, 5, 6, 2, 3, 2, 1.5)
    want = run_ref(x, off, gy, (2, 3))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    gy_nc = gy.transpose(2, 3).contiguous().transpose(2, 3)
    got = run_impl(x_cl, off, gy_nc, (2, 3), impl)
    for a, b in zip(got, want):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_auto_choice_and_public_op():
    # Forward: per-pixel always (measured faster or equal); the public op and
    # impl 0 are bitwise equal to it (no atomics in the forward).
    for c, g in ((32, 1), (32, 2), (30, 2), (8, 1)):
        x, off, _ = make(1, c, 4, 5, 2, 2, g, 1.5, dtype=torch.float32)
        auto = torch.ops.mmext_testing.lau_forward_impl(x, off, 2, 2, 0)
        public = torch.ops.mmext.lau_forward(x, off, 2, 2)
        picked = torch.ops.mmext_testing.lau_forward_impl(x, off, 2, 2, PER_PIXEL)
        torch.testing.assert_close(auto, picked, rtol=0, atol=0)
        torch.testing.assert_close(public, picked, rtol=0, atol=0)
    # Backward: channels-last when a group has >= 16 channels. grad_offsets has
    # no atomics, so it is bitwise equal to the chosen family's.
    for c, g, chosen in ((32, 1, CHANNELS_LAST), (32, 2, CHANNELS_LAST), (30, 2, PER_PIXEL), (8, 1, PER_PIXEL)):
        x, off, gy = make(1, c, 4, 5, 2, 2, g, 1.5, dtype=torch.float32)
        _, goff_auto = torch.ops.mmext_testing.lau_backward_impl(gy, x, off, 2, 2, 0)
        _, goff_pub = torch.ops.mmext.lau_backward(gy, x, off, 2, 2)
        _, goff_pick = torch.ops.mmext_testing.lau_backward_impl(gy, x, off, 2, 2, chosen)
        torch.testing.assert_close(goff_auto, goff_pick, rtol=0, atol=0)
        torch.testing.assert_close(goff_pub, goff_pick, rtol=0, atol=0)


def test_bad_impl_raises():
    x, off, gy = make(1, 4, 3, 3, 2, 2, 1, 1.0, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="impl must be"):
        torch.ops.mmext_testing.lau_forward_impl(x, off, 2, 2, 3)
    with pytest.raises(RuntimeError, match="impl must be"):
        torch.ops.mmext_testing.lau_backward_impl(gy, x, off, 2, 2, -1)


def test_opcheck_and_gradcheck_channels_last_path():
    x, off, _ = make(1, 32, 3, 4, 2, 2, 1, 0.8)
    torch.library.opcheck(torch.ops.mmext.lau_forward.default, (x.float(), off.float(), 2, 2))
    x.requires_grad_()
    off.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: torch.ops.mmext.lau_forward(a, b, 2, 2), (x, off), nondet_tol=1e-12
    )


def test_empty_inputs():
    for impl in (PER_PIXEL, CHANNELS_LAST):
        x, off, gy = make(0, 32, 3, 3, 2, 2, 1, 1.0)
        y, gx, goff = run_impl(x, off, gy, (2, 2), impl)
        assert y.shape == (0, 32, 6, 6) and gx.shape == x.shape and goff.shape == off.shape
