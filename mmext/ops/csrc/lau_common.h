// What the CPU and the CUDA kernels of the LaU operator share, so that both
// implement exactly one semantics: the problem geometry, the coordinate /
// clamp / cell rule and the bilinear form of one channel.
//
// For output pixel (i, j) of channel group g:
//   y = i / k_h + dy,  x = j / k_w + dx          (computed in acc_t)
//   NaN coordinate  -> the output is NaN, no gradient flows (see lau.py).
//   y is clamped to [0, h - 1] (x to [0, w - 1]); +-inf clamp like any value.
//   The coordinate gradient is masked to 0 unless 0 <= y <= h - 1 before the
//   clamp (bounds included), as in the official kernel (HolmesShuan/Location-
//   aware-Upsampling-for-Semantic-Segmentation, LaU/src/cuda/lau_cuda_kernel.cuh,
//   lau_micro_coord_bilinear).
//   Cell: y0 = floor(y) (after clamping, so truncation == floor), y1 =
//   min(y0 + 1, h - 1), ly = y - y0.
//   Exact integer coordinate (ly == 0), the official rule: there floor(y) ==
//   ceil(y) and the official kernel zeroes the taps of row ceil(y), so
//   d sample / dy = 0 - top = -(row y interpolated along x), bounds included
//   (y == 0, y == h - 1, and y == 0 when h == 1). Likewise for x. This is not
//   a one-sided difference; it is what the authors trained with.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>
#include <cstdint>

namespace mmext {
namespace lau {

// Sizes of one call: x (N, C, h, w), offsets (N, 2G, H, W), out (N, C, H, W)
// with H = k_h * h, W = k_w * w and Cg = C / G channels per group. The CUDA
// kernels take it by value in int32 when every index fits (see as()).
template <typename index_t>
struct GeometryT {
  index_t N, C, G, Cg, h, w, H, W, k_h, k_w;

  template <typename to_t>
  C10_HOST_DEVICE GeometryT<to_t> as() const {
    return {static_cast<to_t>(N), static_cast<to_t>(C), static_cast<to_t>(G),
            static_cast<to_t>(Cg), static_cast<to_t>(h), static_cast<to_t>(w),
            static_cast<to_t>(H), static_cast<to_t>(W), static_cast<to_t>(k_h),
            static_cast<to_t>(k_w)};
  }
};
using Geometry = GeometryT<int64_t>;

// Geometry of inputs that passed check_inputs (lau_checks.h).
inline Geometry make_geometry(
    const at::Tensor& x, const at::Tensor& offsets, int64_t k_h, int64_t k_w) {
  Geometry s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.h = x.size(2);
  s.w = x.size(3);
  s.G = offsets.size(1) / 2;
  s.Cg = s.C / s.G;
  s.k_h = k_h;
  s.k_w = k_w;
  s.H = k_h * s.h;
  s.W = k_w * s.w;
  return s;
}

// grad_x is accumulated in float32 for half/bfloat16 (sums and atomics in low
// precision are lossy), else in x's dtype; = at::opmath_type of x's dtype.
inline at::ScalarType grad_x_acc_dtype(at::ScalarType x_dtype) {
  return x_dtype == at::kHalf || x_dtype == at::kBFloat16 ? at::kFloat : x_dtype;
}

// grad_x (N, C, h, w), contiguous, in x's dtype, from its accumulator (an
// (N, C, h, w) view of it): the accumulator itself when it already is that.
inline at::Tensor grad_x_from_acc(const at::Tensor& acc, const at::Tensor& x) {
  return acc.to(x.scalar_type(), /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::Contiguous);
}

template <typename acc_t>
struct Axis {
  int64_t i0;   // lower tap index
  int64_t i1;   // upper tap index (== i0 at the last row/column)
  acc_t frac;   // weight of the upper tap
  acc_t gmask;  // 1 if the coordinate was inside [0, size-1] before clamping (gradient flows), else 0
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
  // Bounds included (official kernel: H <= height - 1 && H >= 0): only a
  // coordinate the clamp actually moved has a zero gradient.
  a.gmask = (p >= acc_t(0) && p <= maxv) ? acc_t(1) : acc_t(0);
  p = p <= acc_t(0) ? acc_t(0) : (p >= maxv ? maxv : p);
  // p is in [0, size-1] here, so truncation is floor and cannot overflow.
  int64_t i0 = static_cast<int64_t>(p);
  if (i0 > size - 1) i0 = size - 1;
  a.i0 = i0;
  a.i1 = i0 + 1 < size ? i0 + 1 : size - 1;
  a.frac = p - static_cast<acc_t>(i0);
  return true;
}

// Bilinear form of one channel at one sampling point: taps a00 (y0, x0),
// a01 (y0, x1), a10 (y1, x0), a11 (y1, x1); lx, ly = weights of x1, y1.
template <typename acc_t>
struct Bilinear {
  acc_t a00, a01, a10, a11;
  acc_t top, bot;  // rows y0 and y1 interpolated along x

  C10_HOST_DEVICE Bilinear(acc_t a00_, acc_t a01_, acc_t a10_, acc_t a11_, acc_t lx)
      : a00(a00_), a01(a01_), a10(a10_), a11(a11_),
        top(a00_ + lx * (a01_ - a00_)), bot(a10_ + lx * (a11_ - a10_)) {}

  // The sample (NaN when ly is NaN: the CPU forward marks NaN pixels so).
  C10_HOST_DEVICE acc_t value(acc_t ly) const { return top + ly * (bot - top); }
  // d sample / d y. Inside a cell bot - top; at an exact integer row
  // (ly == 0) the official rule: the row-y1 taps count as 0, so -top.
  C10_HOST_DEVICE acc_t grad_y(acc_t ly) const { return ly != acc_t(0) ? bot - top : -top; }
  // d sample / d x; at an exact integer column (lx == 0) the column-x1 taps
  // count as 0: -(column x0 interpolated along y).
  C10_HOST_DEVICE acc_t grad_x(acc_t lx, acc_t ly) const {
    return lx != acc_t(0) ? (a01 - a00) + ly * ((a11 - a10) - (a01 - a00)) : -(a00 + ly * (a10 - a00));
  }
};

// Load (as acc_t) the 4 taps src[o00], src[o01], src[o10], src[o11].
template <typename acc_t, typename scalar_t, typename index_t>
C10_HOST_DEVICE inline Bilinear<acc_t> gather_taps(
    const scalar_t* src, index_t o00, index_t o01, index_t o10, index_t o11, acc_t lx) {
  return Bilinear<acc_t>(
      static_cast<acc_t>(src[o00]), static_cast<acc_t>(src[o01]), static_cast<acc_t>(src[o10]),
      static_cast<acc_t>(src[o11]), lx);
}

}  // namespace lau
}  // namespace mmext
