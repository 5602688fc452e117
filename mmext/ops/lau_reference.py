"""Pure-PyTorch reference of the LaU operator, built on ``F.grid_sample``.

It is the test oracle of the compiled kernels and the fallback when they are
unavailable. Semantics (see :mod:`mmext.ops.lau` for the full text): output
pixel (i, j) of channel group g samples ``x`` bilinearly at
``y = i / k_h + dy``, ``x = j / k_w + dx`` clamped to ``[0, h-1] x [0, w-1]``;
``grid_sample(align_corners=True, padding_mode="border")`` has exactly this
clamping and gradient convention once the coordinates are normalised.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F


def _factors(scale_factor: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(scale_factor, int):
        return scale_factor, scale_factor
    k_h, k_w = scale_factor
    return int(k_h), int(k_w)


def _normalise(coord: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel coordinate in [0, size-1] -> grid_sample's [-1, 1] (align_corners=True)."""
    if size == 1:
        # Any finite value samples the single row/column; coord * 0 (coord is
        # already clamped, so finite) keeps offsets in the graph with the
        # documented zero gradient.
        return coord * 0.0
    # Multiply before dividing: 0 and size-1 then map to exactly -1 and 1, so
    # grid_sample's un-normalisation gives back exactly 0 and size-1 and the
    # border gradient rule applies. (Exact interior integer coordinates may
    # round-trip one ulp low for some sizes, flipping grid_sample to the left
    # cell; sizes with size-1 a power of two round-trip exactly.)
    return coord * 2.0 / (size - 1) - 1.0


def location_aware_upsample_reference(
    x: torch.Tensor, offsets: torch.Tensor, scale_factor: Union[int, Sequence[int]]
) -> torch.Tensor:
    """LaU with ``F.grid_sample``.

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
    # Clamp explicitly so +-inf and huge offsets never reach grid_sample; the
    # clamp's gradient at the bounds is then zeroed by grid_sample's own
    # border rule (coordinate <= 0 or >= size-1 -> zero coordinate gradient).
    y = y.clamp(0, h - 1)
    xx = xx.clamp(0, w - 1)
    grid = torch.stack((_normalise(xx, w), _normalise(y, h)), dim=-1)  # (N, G, H, W, 2)
    out = F.grid_sample(
        xc.reshape(n * g, c // g, h, w),
        grid.reshape(n * g, H, W, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    ).reshape(n, g, c // g, H, W)
    out = torch.where(nan_mask.unsqueeze(2), torch.full_like(out, float("nan")), out)
    return out.reshape(n, c, H, W).to(out_dtype)
