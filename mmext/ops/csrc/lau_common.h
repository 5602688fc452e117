// Shared coordinate math of the LaU operator, used by the CPU and the CUDA
// kernels so that both implement exactly one semantics.
//
// For output pixel (i, j) of channel group g:
//   y = i / k_h + dy,  x = j / k_w + dx          (computed in acc_t)
//   NaN coordinate  -> the output is NaN, no gradient flows (see lau.py).
//   y is clamped to [0, h - 1] (x to [0, w - 1]); +-inf clamp like any value.
//   The coordinate gradient is masked to 0 unless 0 < y < h - 1 strictly
//   (the same as grid_sample(padding_mode="border", align_corners=True)).
//   Cell: y0 = floor(y) (after clamping, so truncation == floor), y1 =
//   min(y0 + 1, h - 1), ly = y - y0. At an exact integer interior coordinate
//   this picks the cell to the right, so d/dy is the right-sided difference.
#pragma once

#include <c10/macros/Macros.h>
#include <cstdint>

namespace mmext {
namespace lau {

template <typename acc_t>
struct Axis {
  int64_t i0;   // lower tap index
  int64_t i1;   // upper tap index (== i0 at the last row/column)
  acc_t frac;   // weight of the upper tap
  acc_t gmask;  // 1 if the coordinate is strictly inside (gradient flows), else 0
};

// Resolve one axis. Returns false for a NaN coordinate (caller writes NaN).
template <typename acc_t>
C10_HOST_DEVICE inline bool resolve_axis(acc_t p, int64_t size, Axis<acc_t>& a) {
  // NaN check without <cmath> so the same code runs in device code.
  if (p != p) {
    a.i0 = 0;
    a.i1 = 0;
    a.frac = acc_t(0);
    a.gmask = acc_t(0);
    return false;
  }
  const acc_t maxv = static_cast<acc_t>(size - 1);
  // Strict inequalities: at the border (or with size 1) the coordinate is
  // treated as clamped, so its gradient is zero (grid_sample's convention).
  a.gmask = (p > acc_t(0) && p < maxv) ? acc_t(1) : acc_t(0);
  p = p <= acc_t(0) ? acc_t(0) : (p >= maxv ? maxv : p);
  // p is in [0, size-1] here, so truncation is floor and cannot overflow.
  int64_t i0 = static_cast<int64_t>(p);
  if (i0 > size - 1) i0 = size - 1;
  a.i0 = i0;
  a.i1 = i0 + 1 < size ? i0 + 1 : size - 1;
  a.frac = p - static_cast<acc_t>(i0);
  return true;
}

}  // namespace lau
}  // namespace mmext
