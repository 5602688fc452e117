"""LaU (Location-aware Upsampling) operator: functional API and nn.Module.

Semantics (He et al., "Location-aware Upsampling for Semantic Segmentation")
-----------------------------------------------------------------------------
``x``: (N, C, h, w). ``offsets``: (N, 2G, H, W) with H = k_h*h, W = k_w*w and
channels ordered ``[dy_0, dx_0, dy_1, dx_1, ..., dy_{G-1}, dx_{G-1}]``
(row offset first). Group g drives the channels ``[g*C/G, (g+1)*C/G)`` of x;
G = 1 is the paper's shared offsets, G = C gives one offset pair per channel.

Output pixel (n, c, i, j), with g = c // (C/G), samples channel c of x
bilinearly at::

    y = i / k_h + offsets[n, 2g,   i, j]     (rows)
    x = j / k_w + offsets[n, 2g+1, i, j]     (columns)

The base coordinate i/k_h is neither of F.interpolate's align_corners
conventions (zero offsets give x[i // k] exactly on every k-th row). The
coordinate is clamped to [0, h-1] x [0, w-1] (border replicate); +-inf and
huge offsets clamp like any other value.

Gradient convention: the official kernel's (HolmesShuan/Location-aware-
Upsampling-for-Semantic-Segmentation at 83822e8, ``LaU/src/cuda/
lau_cuda_kernel.cuh``, ``lau_micro_coord_bilinear`` L130-L204), implemented
identically by the C++ kernel, the CUDA kernel and the reference (which
encodes it in explicit gathers, not ``F.grid_sample``):

* grad_x: grad_out scattered to the 4 taps with the bilinear weights
  (at the last row/column the upper tap coincides with the lower one).
* grad_offsets[dy]: sum over the C/G channels of the group of
  ``grad_out * d(sample)/dy``; likewise for dx.
* A coordinate that the clamp moves (y < 0 or y > h-1 before clamping, +-inf
  included) has zero offset gradient for that axis. The bounds themselves
  (y == 0, y == h-1) are not clamped and follow the next rule.
* Inside a cell (y not an integer), d/dy = x[y1] - x[y0] (rows interpolated
  along the other axis), y0 = floor(y), y1 = y0 + 1.
* At an exact integer coordinate y = m, 0 <= m <= h-1 (also m = 0 with
  h == 1), floor(y) == ceil(y) and the official kernel zeroes the taps of
  row ceil(y): d/dy = -x[m] (row m interpolated along the other axis), not a
  one-sided difference. With zero offsets this applies to every k-th output
  row/column (i = k*m). Likewise for x and columns.
* NaN offset (either of dy, dx): the output of that pixel is NaN for every
  channel of the group; the pixel contributes nothing to grad_x and its offset
  gradient is 0. No memory outside x is ever read.

Computation happens in float32 for float16/bfloat16 inputs (float64 for
float64), results are cast back to the input dtype; grad_x of low-precision
inputs is accumulated in float32.

Backends: the compiled extension (CPU kernel, CUDA kernel) when available,
otherwise :func:`location_aware_upsample_reference` with one warning per
process and device type. ``MMEXT_LAU_DISABLE=1`` selects the reference
without a warning.
"""
from __future__ import annotations

import warnings
from numbers import Integral
from typing import Sequence, Set, Tuple, Union

import torch
from torch import nn

from . import _extension
from .lau_reference import location_aware_upsample_reference

ScaleFactor = Union[int, Sequence[int]]

_WARNED: Set[str] = set()  # device types that already got the fallback warning


def _pair_factor(scale_factor: ScaleFactor) -> Tuple[int, int]:
    """int k or (k_h, k_w) -> (k_h, k_w), both Python ints >= 1."""
    if isinstance(scale_factor, (tuple, list)):
        if len(scale_factor) != 2:
            raise ValueError(
                f"scale_factor must be an int or a (k_h, k_w) pair, got a sequence of "
                f"length {len(scale_factor)}: {scale_factor!r}"
            )
        items = tuple(scale_factor)
    else:
        items = (scale_factor, scale_factor)
    for k in items:
        if isinstance(k, bool) or not isinstance(k, Integral):
            raise ValueError(
                f"scale_factor must be integer (LaU upsamples by integer factors), got "
                f"{scale_factor!r}; pass e.g. 4 or (4, 2)"
            )
        if k < 1:
            raise ValueError(f"scale_factor must be >= 1, got {scale_factor!r}")
    return int(items[0]), int(items[1])


def check_lau_inputs(x: torch.Tensor, offsets: torch.Tensor, k_h: int, k_w: int) -> int:
    """Validate LaU inputs early with messages that name problem and fix.

    Returns:
        G, the number of offset groups.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(offsets, torch.Tensor):
        raise TypeError(
            f"x and offsets must be tensors, got {type(x).__name__} and {type(offsets).__name__}"
        )
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, h, w), got shape {tuple(x.shape)}; add a batch dim")
    n, c, h, w = x.shape
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}; cast with x.float()")
    if offsets.dtype != x.dtype:
        raise ValueError(
            f"x and offsets must have the same dtype, got x: {x.dtype}, offsets: {offsets.dtype}; "
            f"cast offsets with offsets.to(x.dtype)"
        )
    if offsets.device != x.device:
        raise ValueError(
            f"x and offsets must be on the same device, got x: {x.device}, offsets: "
            f"{offsets.device}; move offsets with offsets.to(x.device)"
        )
    if c < 1 or h < 1 or w < 1:
        raise ValueError(f"x must have C, h, w >= 1, got shape {tuple(x.shape)}")
    expected_hw = (k_h * h, k_w * w)
    if offsets.dim() != 4 or offsets.shape[0] != n or tuple(offsets.shape[2:]) != expected_hw:
        raise ValueError(
            f"offsets must have shape (N, 2G, k_h*h, k_w*w) = ({n}, 2G, {expected_hw[0]}, "
            f"{expected_hw[1]}) for x of shape {tuple(x.shape)} and scale_factor ({k_h}, {k_w}), "
            f"got {tuple(offsets.shape)}"
        )
    two_g = offsets.shape[1]
    if two_g < 2 or two_g % 2 != 0:
        raise ValueError(
            f"offsets.shape[1] must be 2*G (a (dy, dx) pair per group), got {two_g}"
        )
    groups = two_g // 2
    if c % groups != 0:
        raise ValueError(
            f"the number of offset groups G={groups} (offsets.shape[1]={two_g}) must divide "
            f"C={c}; use G in the divisors of C (G=1 shares one offset pair by all channels)"
        )
    return groups


def _warn_fallback(device_type: str) -> None:
    if device_type in _WARNED:
        return
    _WARNED.add(device_type)
    state = _extension.extension_state()
    warnings.warn(
        f"mmext LaU: no compiled kernel for {device_type} tensors ({state.error or 'not built'}); "
        f"using the slower pure-PyTorch reference. Run `python -m mmext.ops.build` to see the "
        f"build error, or set MMEXT_LAU_DISABLE=1 to choose the reference silently.",
        RuntimeWarning,
        stacklevel=3,
    )


def location_aware_upsample(
    x: torch.Tensor, offsets: torch.Tensor, scale_factor: ScaleFactor, *, backend: str = "auto"
) -> torch.Tensor:
    """Location-aware upsampling (see the module docstring for exact semantics).

    Args:
        x: (N, C, h, w) floating tensor (float16/bfloat16/float32/float64).
        offsets: (N, 2G, k_h*h, k_w*w), same dtype and device as ``x``, channels
            ``[dy_0, dx_0, ..., dy_{G-1}, dx_{G-1}]`` in input-pixel units.
        scale_factor: int k or (k_h, k_w), integers >= 1.
        backend: "auto" (compiled kernel, else the reference with one warning),
            "extension" (raise if no compiled kernel) or "reference".

    Returns:
        (N, C, k_h*h, k_w*w) tensor; differentiable w.r.t. ``x`` and ``offsets``.
    """
    k_h, k_w = _pair_factor(scale_factor)
    check_lau_inputs(x, offsets, k_h, k_w)
    if backend == "reference":
        return location_aware_upsample_reference(x, offsets, (k_h, k_w))
    if backend not in ("auto", "extension"):
        raise ValueError(f"backend must be 'auto', 'extension' or 'reference', got {backend!r}")
    _extension.load_extension()
    if _extension.has_kernel_for(x.device):
        return torch.ops.mmext.lau_forward(x, offsets, k_h, k_w)
    if backend == "extension":
        state = _extension.extension_state()
        raise RuntimeError(
            f"mmext LaU extension has no kernel for {x.device.type} tensors: "
            f"{state.error or 'not built'}"
        )
    if not _extension.extension_state().disabled:
        _warn_fallback(x.device.type)
    return location_aware_upsample_reference(x, offsets, (k_h, k_w))


class LocationAwareUpsample(nn.Module):
    """nn.Module wrapper of :func:`location_aware_upsample`.

    Args:
        scale_factor: int k or (k_h, k_w).

    Shape:
        x: (N, C, h, w); offsets: (N, 2G, k_h*h, k_w*w) -> (N, C, k_h*h, k_w*w).
    """

    def __init__(self, scale_factor: ScaleFactor) -> None:
        super().__init__()
        self.scale_factor: Tuple[int, int] = _pair_factor(scale_factor)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return location_aware_upsample(x, offsets, self.scale_factor)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}"
