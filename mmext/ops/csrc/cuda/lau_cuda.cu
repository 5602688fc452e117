// CUDA kernels of the LaU operator.
//
// One thread per output pixel of a channel group (n, g, i, j): it resolves
// the sampling coordinate once and loops over the C/G channels of the group.
// Forward writes C/G outputs; backward scatters grad_x with atomics and
// reduces the offset gradient over the group's channels in registers, so
// per-channel offsets are never materialised. Arithmetic is done in
// at::opmath_type (float32 for half/bfloat16, double for double).
//
// Includes stay on c10/cuda headers: ATen/cuda/CUDAContext.h would pull in
// cuSPARSE/cuBLAS headers that minimal toolkits lack.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "../lau_checks.h"
#include "../lau_common.h"

namespace mmext {
namespace lau {
namespace {

constexpr int kThreads = 256;

struct Geometry {
  int64_t N, C, G, Cg, h, w, H, W, k_h, k_w;
};

Geometry make_geometry(const at::Tensor& x, const at::Tensor& offsets, int64_t k_h, int64_t k_w) {
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

// index_t is int32 when every tensor has < 2^31 elements (cheaper div/mod).
template <typename scalar_t, typename acc_t, typename index_t>
__global__ void lau_forward_kernel(
    const scalar_t* __restrict__ x, const scalar_t* __restrict__ offsets,
    scalar_t* __restrict__ out, index_t total, index_t C, index_t G, index_t Cg, index_t h,
    index_t w, index_t H, index_t W, index_t k_h, index_t k_w, acc_t nan_value) {
  const index_t HW = H * W, hw = h * w;
  for (index_t idx = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t j = idx % W;
    index_t t = idx / W;
    const index_t i = t % H;
    t /= H;
    const index_t g = t % G;
    const index_t n = t / G;
    const index_t pix = i * W + j;
    const scalar_t* off = offsets + (n * 2 * G + 2 * g) * HW + pix;
    const acc_t py = static_cast<acc_t>(i) / static_cast<acc_t>(k_h) + static_cast<acc_t>(off[0]);
    const acc_t px = static_cast<acc_t>(j) / static_cast<acc_t>(k_w) + static_cast<acc_t>(off[HW]);
    Axis<acc_t> ay, ax;
    const bool oky = resolve_axis<acc_t>(py, h, ay);
    const bool okx = resolve_axis<acc_t>(px, w, ax);
    scalar_t* dst = out + (n * C + g * Cg) * HW + pix;
    if (!(oky && okx)) {
      for (index_t c = 0; c < Cg; ++c) dst[c * HW] = static_cast<scalar_t>(nan_value);
      continue;
    }
    const index_t o00 = static_cast<index_t>(ay.i0 * w + ax.i0);
    const index_t o01 = static_cast<index_t>(ay.i0 * w + ax.i1);
    const index_t o10 = static_cast<index_t>(ay.i1 * w + ax.i0);
    const index_t o11 = static_cast<index_t>(ay.i1 * w + ax.i1);
    const scalar_t* src = x + (n * C + g * Cg) * hw;
#pragma unroll 4
    for (index_t c = 0; c < Cg; ++c) {
      const acc_t a00 = static_cast<acc_t>(src[o00]);
      const acc_t a01 = static_cast<acc_t>(src[o01]);
      const acc_t a10 = static_cast<acc_t>(src[o10]);
      const acc_t a11 = static_cast<acc_t>(src[o11]);
      const acc_t top = a00 + ax.frac * (a01 - a00);
      const acc_t bot = a10 + ax.frac * (a11 - a10);
      dst[c * HW] = static_cast<scalar_t>(top + ay.frac * (bot - top));
      src += hw;
    }
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void lau_backward_kernel(
    const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ x,
    const scalar_t* __restrict__ offsets, acc_t* __restrict__ grad_x,
    scalar_t* __restrict__ grad_off, index_t total, index_t C, index_t G, index_t Cg, index_t h,
    index_t w, index_t H, index_t W, index_t k_h, index_t k_w) {
  const index_t HW = H * W, hw = h * w;
  for (index_t idx = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t j = idx % W;
    index_t t = idx / W;
    const index_t i = t % H;
    t /= H;
    const index_t g = t % G;
    const index_t n = t / G;
    const index_t pix = i * W + j;
    const index_t off_base = (n * 2 * G + 2 * g) * HW + pix;
    const acc_t py =
        static_cast<acc_t>(i) / static_cast<acc_t>(k_h) + static_cast<acc_t>(offsets[off_base]);
    const acc_t px =
        static_cast<acc_t>(j) / static_cast<acc_t>(k_w) + static_cast<acc_t>(offsets[off_base + HW]);
    Axis<acc_t> ay, ax;
    const bool oky = resolve_axis<acc_t>(py, h, ay);
    const bool okx = resolve_axis<acc_t>(px, w, ax);
    if (!(oky && okx)) {
      // NaN coordinate: no gradient to x, zero offset gradient (documented).
      grad_off[off_base] = static_cast<scalar_t>(acc_t(0));
      grad_off[off_base + HW] = static_cast<scalar_t>(acc_t(0));
      continue;
    }
    const index_t o00 = static_cast<index_t>(ay.i0 * w + ax.i0);
    const index_t o01 = static_cast<index_t>(ay.i0 * w + ax.i1);
    const index_t o10 = static_cast<index_t>(ay.i1 * w + ax.i0);
    const index_t o11 = static_cast<index_t>(ay.i1 * w + ax.i1);
    const acc_t ly = ay.frac, lx = ax.frac;
    const acc_t w00 = (acc_t(1) - ly) * (acc_t(1) - lx), w01 = (acc_t(1) - ly) * lx;
    const acc_t w10 = ly * (acc_t(1) - lx), w11 = ly * lx;
    const bool need_gy = ay.gmask != acc_t(0), need_gx = ax.gmask != acc_t(0);
    const bool need_taps = need_gy || need_gx;
    const scalar_t* src = x + (n * C + g * Cg) * hw;
    const scalar_t* go = grad_out + (n * C + g * Cg) * HW + pix;
    acc_t* gsrc = grad_x + (n * C + g * Cg) * hw;
    acc_t gy = acc_t(0), gx = acc_t(0);
    for (index_t c = 0; c < Cg; ++c) {
      const acc_t gv = static_cast<acc_t>(go[c * HW]);
      if (need_taps) {
        const acc_t a00 = static_cast<acc_t>(src[o00]);
        const acc_t a01 = static_cast<acc_t>(src[o01]);
        const acc_t a10 = static_cast<acc_t>(src[o10]);
        const acc_t a11 = static_cast<acc_t>(src[o11]);
        const acc_t top = a00 + lx * (a01 - a00);
        const acc_t bot = a10 + lx * (a11 - a10);
        gy += gv * (bot - top);
        gx += gv * ((a01 - a00) + ly * ((a11 - a10) - (a01 - a00)));
      }
      // Zero-weight taps (integer coordinates, borders) are common with
      // integer scale factors: skipping their atomics saves bandwidth.
      atomicAdd(gsrc + o00, gv * w00);
      if (w01 != acc_t(0)) atomicAdd(gsrc + o01, gv * w01);
      if (w10 != acc_t(0)) atomicAdd(gsrc + o10, gv * w10);
      if (w11 != acc_t(0)) atomicAdd(gsrc + o11, gv * w11);
      src += hw;
      gsrc += hw;
    }
    grad_off[off_base] = static_cast<scalar_t>(need_gy ? gy : acc_t(0));
    grad_off[off_base + HW] = static_cast<scalar_t>(need_gx ? gx : acc_t(0));
  }
}

int64_t num_blocks(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  // Grid-stride loops cover the rest; the cap keeps gridDim.x in range.
  return std::min<int64_t>(std::max<int64_t>(blocks, 1), int64_t(1) << 30);
}

bool fits_int32(const at::Tensor& a, const at::Tensor& b, const Geometry& s) {
  // 2^30 leaves headroom so the grid-stride increment cannot overflow int32.
  const int64_t lim = int64_t(1) << 30;
  return a.numel() < lim && b.numel() < lim && s.N * s.C * s.H * s.W < lim;
}

at::Tensor lau_forward_cuda(const at::Tensor& x_in, const at::Tensor& offsets_in, int64_t k_h, int64_t k_w) {
  check_inputs(x_in, offsets_in, k_h, k_w, "lau_forward");
  TORCH_CHECK(x_in.is_cuda(), "lau_forward (CUDA kernel): x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const Geometry s = make_geometry(x, offsets, k_h, k_w);
  at::Tensor out = at::empty({s.N, s.C, s.H, s.W}, x.options());
  if (out.numel() == 0) return out;
  const int64_t total = s.N * s.G * s.H * s.W;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const bool small = fits_int32(x, out, s);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const acc_t nan_value = std::numeric_limits<acc_t>::quiet_NaN();
        if (small) {
          lau_forward_kernel<scalar_t, acc_t, int32_t><<<num_blocks(total), kThreads, 0, stream>>>(
              x.const_data_ptr<scalar_t>(), offsets.const_data_ptr<scalar_t>(),
              out.mutable_data_ptr<scalar_t>(), static_cast<int32_t>(total),
              static_cast<int32_t>(s.C), static_cast<int32_t>(s.G), static_cast<int32_t>(s.Cg),
              static_cast<int32_t>(s.h), static_cast<int32_t>(s.w), static_cast<int32_t>(s.H),
              static_cast<int32_t>(s.W), static_cast<int32_t>(k_h), static_cast<int32_t>(k_w),
              nan_value);
        } else {
          lau_forward_kernel<scalar_t, acc_t, int64_t><<<num_blocks(total), kThreads, 0, stream>>>(
              x.const_data_ptr<scalar_t>(), offsets.const_data_ptr<scalar_t>(),
              out.mutable_data_ptr<scalar_t>(), total, s.C, s.G, s.Cg, s.h, s.w, s.H, s.W, k_h,
              k_w, nan_value);
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return out;
}

std::tuple<at::Tensor, at::Tensor> lau_backward_cuda(
    const at::Tensor& grad_out_in, const at::Tensor& x_in, const at::Tensor& offsets_in, int64_t k_h,
    int64_t k_w) {
  check_inputs(x_in, offsets_in, k_h, k_w, "lau_backward");
  check_grad_out(grad_out_in, x_in, k_h, k_w);
  TORCH_CHECK(x_in.is_cuda(), "lau_backward (CUDA kernel): x must be a CUDA tensor");
  TORCH_CHECK(grad_out_in.device() == x_in.device(), "lau_backward: grad_out must be on x's device");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor grad_out = grad_out_in.contiguous();
  const at::Tensor x = x_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const Geometry s = make_geometry(x, offsets, k_h, k_w);
  // Atomics on half/bfloat16 are slow and lossy: accumulate in float32.
  const bool reduced = x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
  at::Tensor gx_acc = at::zeros(x.sizes(), x.options().dtype(reduced ? at::kFloat : x.scalar_type()));
  // Every offset-gradient element is written by exactly one thread.
  at::Tensor grad_off = at::empty(offsets.sizes(), offsets.options());
  const int64_t total = s.N * s.G * s.H * s.W;
  if (total == 0 || x.numel() == 0) {
    grad_off.zero_();
  } else {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    const bool small = fits_int32(x, grad_out, s);
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_backward_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          if (small) {
            lau_backward_kernel<scalar_t, acc_t, int32_t><<<num_blocks(total), kThreads, 0, stream>>>(
                grad_out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                offsets.const_data_ptr<scalar_t>(), gx_acc.mutable_data_ptr<acc_t>(),
                grad_off.mutable_data_ptr<scalar_t>(), static_cast<int32_t>(total),
                static_cast<int32_t>(s.C), static_cast<int32_t>(s.G), static_cast<int32_t>(s.Cg),
                static_cast<int32_t>(s.h), static_cast<int32_t>(s.w), static_cast<int32_t>(s.H),
                static_cast<int32_t>(s.W), static_cast<int32_t>(k_h), static_cast<int32_t>(k_w));
          } else {
            lau_backward_kernel<scalar_t, acc_t, int64_t><<<num_blocks(total), kThreads, 0, stream>>>(
                grad_out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                offsets.const_data_ptr<scalar_t>(), gx_acc.mutable_data_ptr<acc_t>(),
                grad_off.mutable_data_ptr<scalar_t>(), total, s.C, s.G, s.Cg, s.h, s.w, s.H, s.W,
                k_h, k_w);
          }
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  at::Tensor grad_x = reduced ? gx_acc.to(x.scalar_type()) : gx_acc;
  return std::make_tuple(grad_x, grad_off);
}

}  // namespace
}  // namespace lau
}  // namespace mmext

TORCH_LIBRARY_IMPL(mmext, CUDA, m) {
  m.impl("lau_forward", &mmext::lau::lau_forward_cuda);
  m.impl("lau_backward", &mmext::lau::lau_backward_cuda);
}
