"""Pure-PyTorch reference of the LaU operator: explicit bilinear gathers.

It is the test oracle of the compiled kernels and the fallback when they are
unavailable. Semantics (see :mod:`mmext.ops.lau` for the full text): output
pixel (i, j) of channel group g samples ``x`` bilinearly at
``y = i / k_h + dy``, ``x = j / k_w + dx`` clamped to ``[0, h-1] x [0, w-1]``.

The gradients come from autograd through the formula below, which encodes
the official kernel's rule at exact integer coordinates (the taps of row
``ceil(y) == floor(y)`` count as 0 there, so d/dy = -(row y interpolated
along x); likewise for x). ``torch.clamp`` passes the gradient for values in
``[0, size-1]`` bounds included, which is the official coordinate-gradient
mask. ``F.grid_sample`` is not used: it has no such integer rule, and its
normalised coordinates can round-trip one ulp below an integer and pick the
left cell.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch


def _factors(scale_factor: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(scale_factor, int):
        return scale_factor, scale_factor
    k_h, k_w = scale_factor
    return int(k_h), int(k_w)


def _cell(p: torch.Tensor, size: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clamped coordinate p in [0, size-1] -> (lower index, upper index, fraction).

    The indices are integer tensors (no gradient); the fraction p - floor(p)
    carries p's gradient with slope 1.
    """
    lower = p.detach().floor()
    i0 = lower.long()
    i1 = (i0 + 1).clamp(max=size - 1)
    return i0, i1, p - lower


def location_aware_upsample_reference(
    x: torch.Tensor, offsets: torch.Tensor, scale_factor: Union[int, Sequence[int]]
) -> torch.Tensor:
    """LaU with explicit gathers (differentiable through autograd).

    Args:
        x: (N, C, h, w) floating tensor.
        offsets: (N, 2G, k_h*h, k_w*w) with channels [dy_0, dx_0, dy_1, dx_1, ...];
            group g covers channels [g*C/G, (g+1)*C/G) of ``x``.
        scale_factor: int k or (k_h, k_w).

    Returns:
        (N, C, k_h*h, k_w*w) tensor of ``x``'s dtype. float16/bfloat16 inputs are
        computed in float32 (like the kernels' accumulation) and cast back.
    """
    k_h, k_w = _factors(scale_factor)
    n, c, h, w = x.shape
    g = offsets.shape[1] // 2
    cg = c // g
    H, W = k_h * h, k_w * w
    out_dtype = x.dtype
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    xc = x.to(compute)
    off = offsets.to(compute).reshape(n, g, 2, H, W)
    base_y = torch.arange(H, device=x.device, dtype=compute) / k_h  # same division as the kernels
    base_x = torch.arange(W, device=x.device, dtype=compute) / k_w
    y = base_y.view(1, 1, H, 1) + off[:, :, 0]  # (N, G, H, W)
    xx = base_x.view(1, 1, 1, W) + off[:, :, 1]
    # NaN convention: NaN output, no gradient anywhere (kernels do the same).
    nan_mask = torch.isnan(y) | torch.isnan(xx)
    y = torch.where(nan_mask, torch.zeros_like(y), y)
    xx = torch.where(nan_mask, torch.zeros_like(xx), xx)
    # clamp's gradient is 1 on [0, size-1] (bounds included) and 0 outside:
    # exactly the official kernel's coordinate-gradient mask. +-inf clamp too.
    y0, y1, ly = _cell(y.clamp(0, h - 1), h)
    x0, x1, lx = _cell(xx.clamp(0, w - 1), w)
    # One gather per tap over the flattened (h*w) plane; the index is broadcast
    # (expand, no copy) over the C/G channels of each group.
    planes = xc.reshape(n, g, cg, h * w)

    def tap(iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
        idx = (iy * w + ix).reshape(n, g, 1, H * W).expand(n, g, cg, H * W)
        return planes.gather(3, idx)

    a00, a01, a10, a11 = tap(y0, x0), tap(y0, x1), tap(y1, x0), tap(y1, x1)
    ly = ly.reshape(n, g, 1, H * W)
    lx = lx.reshape(n, g, 1, H * W)
    zero = torch.zeros((), dtype=compute, device=x.device)
    # Official integer rule: at lx == 0 the column-x1 taps are 0, at ly == 0
    # the row-y1 taps are 0. Their weights are 0 there, so the value is
    # unchanged; only d/dlx (d/dly) becomes -(the x0 column) (-(the y0 row)).
    on_col = lx == 0
    top = a00 + lx * (torch.where(on_col, zero, a01) - a00)
    bot = a10 + lx * (torch.where(on_col, zero, a11) - a10)
    bot = torch.where(ly == 0, zero, bot)
    out = (top + ly * (bot - top)).reshape(n, g, cg, H, W)
    out = torch.where(nan_mask.unsqueeze(2), torch.full_like(out, float("nan")), out)
    return out.reshape(n, c, H, W).to(out_dtype)
