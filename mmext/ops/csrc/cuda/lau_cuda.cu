// CUDA kernels of the LaU operator, two families:
//
// * per-pixel: one thread per output pixel of a channel group (n, g, i, j):
//   it resolves the sampling coordinate once and loops over the C/G channels
//   of the group. Forward writes C/G outputs; backward scatters grad_x with
//   atomics and reduces the offset gradient over the group's channels in
//   registers, so per-channel offsets are never materialised.
// * channels-last: x read in NHWC, lanes over channels (see below).
// The automatic choice is made in use_channels_last(); launch_lau() launches
// every kernel. Arithmetic is done in at::opmath_type (float32 for
// half/bfloat16, double for double). The public ops are registered under
// `mmext`; test-only entry points that force a family under `mmext_testing`.
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

// Sampling point of one output pixel (n, g, i, j) in the per-pixel kernels.
template <typename acc_t, typename index_t>
struct PixelSample {
  index_t n, g, pix;           // image, group, i * W + j
  index_t off;                 // element of dy in offsets (dx: off + H * W)
  Axis<acc_t> ay, ax;
  bool ok;                     // false for a NaN coordinate
  index_t o00, o01, o10, o11;  // tap indices within one (h, w) plane
};

// Pixel idx of the flattened (n, g, i, j) space. index_t is int32 when every
// tensor has < 2^31 elements (cheaper div/mod), see launch_lau().
template <typename scalar_t, typename acc_t, typename index_t>
__device__ __forceinline__ PixelSample<acc_t, index_t> resolve_pixel(
    const scalar_t* __restrict__ offsets, index_t idx, const GeometryT<index_t>& s) {
  PixelSample<acc_t, index_t> q;
  const index_t HW = s.H * s.W;
  const index_t j = idx % s.W;
  index_t t = idx / s.W;
  const index_t i = t % s.H;
  t /= s.H;
  q.g = t % s.G;
  q.n = t / s.G;
  q.pix = i * s.W + j;
  q.off = (q.n * 2 * s.G + 2 * q.g) * HW + q.pix;
  const acc_t py = static_cast<acc_t>(i) / static_cast<acc_t>(s.k_h) + static_cast<acc_t>(offsets[q.off]);
  const acc_t px =
      static_cast<acc_t>(j) / static_cast<acc_t>(s.k_w) + static_cast<acc_t>(offsets[q.off + HW]);
  const bool oky = resolve_axis<acc_t>(py, s.h, q.ay);
  const bool okx = resolve_axis<acc_t>(px, s.w, q.ax);
  // & rather than &&: both axes are resolved anyway, and with && nvcc 13 gave
  // the float forward kernel 40 registers instead of 32 (sm_90, --resource-usage).
  q.ok = oky & okx;
  q.o00 = static_cast<index_t>(q.ay.i0 * s.w + q.ax.i0);
  q.o01 = static_cast<index_t>(q.ay.i0 * s.w + q.ax.i1);
  q.o10 = static_cast<index_t>(q.ay.i1 * s.w + q.ax.i0);
  q.o11 = static_cast<index_t>(q.ay.i1 * s.w + q.ax.i1);
  return q;
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void lau_forward_kernel(
    const GeometryT<index_t> s, const scalar_t* __restrict__ x,
    const scalar_t* __restrict__ offsets, scalar_t* __restrict__ out, acc_t nan_value) {
  const index_t HW = s.H * s.W, hw = s.h * s.w, total = s.N * s.G * HW;
  for (index_t idx = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const PixelSample<acc_t, index_t> q = resolve_pixel<scalar_t, acc_t>(offsets, idx, s);
    scalar_t* dst = out + (q.n * s.C + q.g * s.Cg) * HW + q.pix;
    if (!q.ok) {
      for (index_t c = 0; c < s.Cg; ++c) dst[c * HW] = static_cast<scalar_t>(nan_value);
      continue;
    }
    const scalar_t* src = x + (q.n * s.C + q.g * s.Cg) * hw;
#pragma unroll 4
    for (index_t c = 0; c < s.Cg; ++c) {
      const Bilinear<acc_t> b = gather_taps<acc_t>(src, q.o00, q.o01, q.o10, q.o11, q.ax.frac);
      dst[c * HW] = static_cast<scalar_t>(b.value(q.ay.frac));
      src += hw;
    }
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void lau_backward_kernel(
    const GeometryT<index_t> s, const scalar_t* __restrict__ grad_out,
    const scalar_t* __restrict__ x, const scalar_t* __restrict__ offsets,
    acc_t* __restrict__ grad_x, scalar_t* __restrict__ grad_off) {
  const index_t HW = s.H * s.W, hw = s.h * s.w, total = s.N * s.G * HW;
  for (index_t idx = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const PixelSample<acc_t, index_t> q = resolve_pixel<scalar_t, acc_t>(offsets, idx, s);
    if (!q.ok) {
      // NaN coordinate: no gradient to x, zero offset gradient (documented).
      grad_off[q.off] = static_cast<scalar_t>(acc_t(0));
      grad_off[q.off + HW] = static_cast<scalar_t>(acc_t(0));
      continue;
    }
    const acc_t ly = q.ay.frac, lx = q.ax.frac;
    const acc_t w00 = (acc_t(1) - ly) * (acc_t(1) - lx), w01 = (acc_t(1) - ly) * lx;
    const acc_t w10 = ly * (acc_t(1) - lx), w11 = ly * lx;
    const bool need_gy = q.ay.gmask != acc_t(0), need_gx = q.ax.gmask != acc_t(0);
    const bool need_taps = need_gy || need_gx;
    const index_t plane = q.n * s.C + q.g * s.Cg;
    const scalar_t* src = x + plane * hw;
    const scalar_t* go = grad_out + plane * HW + q.pix;
    acc_t* gsrc = grad_x + plane * hw;
    acc_t gy = acc_t(0), gx = acc_t(0);
    for (index_t c = 0; c < s.Cg; ++c) {
      const acc_t gv = static_cast<acc_t>(go[c * HW]);
      if (need_taps) {
        const Bilinear<acc_t> b = gather_taps<acc_t>(src, q.o00, q.o01, q.o10, q.o11, lx);
        gy += gv * b.grad_y(ly);
        gx += gv * b.grad_x(lx, ly);
      }
      // Zero-weight taps (integer coordinates, borders) are common with
      // integer scale factors: skipping their atomics saves bandwidth.
      atomicAdd(gsrc + q.o00, gv * w00);
      if (w01 != acc_t(0)) atomicAdd(gsrc + q.o01, gv * w01);
      if (w10 != acc_t(0)) atomicAdd(gsrc + q.o10, gv * w10);
      if (w11 != acc_t(0)) atomicAdd(gsrc + q.o11, gv * w11);
      src += hw;
      gsrc += hw;
    }
    grad_off[q.off] = static_cast<scalar_t>(need_gy ? gy : acc_t(0));
    grad_off[q.off + HW] = static_cast<scalar_t>(need_gx ? gx : acc_t(0));
  }
}

// ---------------------------------------------------------------------------
// Channels-last ("cl") kernels: lanes run over channels, not pixels.
//
// The per-pixel kernels above gather 4 taps per channel with each lane of a
// warp at a different, data-dependent pixel: one warp load touches as many
// cache lines as distinct tap rows/columns (about 8-12 for random offsets),
// so the L1 (forward) and the L2 atomic units (grad_x) see far more
// transactions than bytes moved (measured: forward L1-bound, backward
// atomic-bound; docs/benchmarks_lau_op.md). Here x is read in NHWC (x_cl)
// and each warp owns a tile of 32 consecutive output pixels of one (n, g):
//   1. lane p resolves the sampling coordinate of pixel p, once per tile;
//   2. for each chunk of 32 channels and each pixel p of the tile, the warp
//      broadcasts p's taps (shuffles) and lane c gathers channel c: every
//      tap load / grad_x atomic is one contiguous 32-channel run (1-2 cache
//      lines instead of ~10);
//   3. NCHW out / grad_out rows go through a padded per-warp shared-memory
//      tile [channel][pixel] so global stores / loads stay coalesced along
//      pixels; the offset gradient (a sum over channels = over lanes) is
//      transposed through shared memory too, so lane p ends up with pixel p.
// Warps never share data: __syncwarp only, no block barriers.
constexpr int kClPix = 32;  // pixels per warp tile (= lanes)

// Tap flags of a resolved pixel.
constexpr int kClValid = 1, kClNeedGy = 2, kClNeedGx = 4, kClDx = 8, kClDy = 16;

// Warps per block: per-warp shared tiles must stay under 48 KiB for double.
template <typename acc_t>
struct ClWarps {
  static constexpr int fwd = 4;
  static constexpr int bwd = sizeof(acc_t) > 4 ? 2 : 4;
};

// Warp tiles of the flattened (n, g, 32-pixel tile) space (host and kernels).
template <typename index_t>
C10_HOST_DEVICE inline index_t cl_tiles_per_plane(const GeometryT<index_t>& s) {
  return (s.H * s.W + kClPix - 1) / kClPix;
}

template <typename acc_t, typename index_t>
struct ClCoord {
  index_t t00 = 0;  // element index of (y0, x0, channel 0 of the group) in x_cl
  acc_t ly = acc_t(0), lx = acc_t(0);
  int flags = 0;
};

template <typename scalar_t, typename acc_t, typename index_t>
__device__ __forceinline__ ClCoord<acc_t, index_t> cl_resolve(
    const scalar_t* __restrict__ offsets, index_t n, index_t g, index_t pix,
    const GeometryT<index_t>& s) {
  ClCoord<acc_t, index_t> q;
  const index_t HW = s.H * s.W;
  const index_t i = pix / s.W, j = pix - i * s.W;
  const scalar_t* off = offsets + (n * 2 * s.G + 2 * g) * HW + pix;
  const acc_t py = static_cast<acc_t>(i) / static_cast<acc_t>(s.k_h) + static_cast<acc_t>(off[0]);
  const acc_t px = static_cast<acc_t>(j) / static_cast<acc_t>(s.k_w) + static_cast<acc_t>(off[HW]);
  Axis<acc_t> ay, ax;
  const bool oky = resolve_axis<acc_t>(py, s.h, ay);
  const bool okx = resolve_axis<acc_t>(px, s.w, ax);
  q.t00 = ((n * s.h + static_cast<index_t>(ay.i0)) * s.w + static_cast<index_t>(ax.i0)) * s.C +
          g * s.Cg;
  q.ly = ay.frac;
  q.lx = ax.frac;
  q.flags = ((oky && okx) ? kClValid : 0) | (ay.gmask != acc_t(0) ? kClNeedGy : 0) |
            (ax.gmask != acc_t(0) ? kClNeedGx : 0) | (ax.i1 != ax.i0 ? kClDx : 0) |
            (ay.i1 != ay.i0 ? kClDy : 0);
  return q;
}

// Warp tile t: image n, group g, pixels [pix0, pix0 + npix); lane p holds
// the sampling point of pixel pix0 + p (flags 0 for p >= npix).
template <typename acc_t, typename index_t>
struct ClTile {
  index_t n, g, pix0;
  int npix;
  ClCoord<acc_t, index_t> mine;
};

template <typename scalar_t, typename acc_t, typename index_t>
__device__ __forceinline__ ClTile<acc_t, index_t> cl_tile(
    const scalar_t* __restrict__ offsets, index_t t, const GeometryT<index_t>& s, int lane) {
  ClTile<acc_t, index_t> wt;
  const index_t HW = s.H * s.W, tiles_per_plane = cl_tiles_per_plane(s);
  const index_t ng = t / tiles_per_plane;
  wt.pix0 = (t - ng * tiles_per_plane) * kClPix;
  wt.g = ng % s.G;
  wt.n = ng / s.G;
  wt.npix = static_cast<int>(HW - wt.pix0 < kClPix ? HW - wt.pix0 : kClPix);
  if (lane < wt.npix) {
    wt.mine = cl_resolve<scalar_t, acc_t>(offsets, wt.n, wt.g, wt.pix0 + lane, s);
  }
  return wt;
}

// Pixel p of the tile, broadcast from lane p, and its 4 taps of channel c.
template <typename acc_t, typename index_t>
struct ClTaps {
  index_t t00, t01, dy;  // x_cl index of tap (y0, x0) and (y0, x1) at channel 0; + dy: row y1
  acc_t ly, lx;
  int flags;
  Bilinear<acc_t> b;
};

template <typename scalar_t, typename acc_t, typename index_t>
__device__ __forceinline__ ClTaps<acc_t, index_t> cl_taps(
    const ClCoord<acc_t, index_t>& mine, int p, const scalar_t* __restrict__ x_cl, index_t c,
    const GeometryT<index_t>& s) {
  const index_t t00 = __shfl_sync(0xffffffffu, mine.t00, p);
  const acc_t ly = __shfl_sync(0xffffffffu, mine.ly, p);
  const acc_t lx = __shfl_sync(0xffffffffu, mine.lx, p);
  const int f = __shfl_sync(0xffffffffu, mine.flags, p);
  // Taps of an invalid (NaN) or missing pixel resolve to valid indices, so
  // the loads stay unconditional (all in flight together) and in bounds.
  const index_t t01 = t00 + ((f & kClDx) ? s.C : index_t(0));
  const index_t dy = (f & kClDy) ? s.w * s.C : index_t(0);
  return {t00, t01, dy, ly, lx, f, gather_taps<acc_t>(x_cl + c, t00, t01, t00 + dy, t01 + dy, lx)};
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void __launch_bounds__(32 * ClWarps<acc_t>::fwd) lau_forward_cl_kernel(
    const GeometryT<index_t> s, const scalar_t* __restrict__ x_cl,
    const scalar_t* __restrict__ offsets, scalar_t* __restrict__ out, acc_t nan_value) {
  constexpr int kW = ClWarps<acc_t>::fwd;
  __shared__ acc_t tiles[kW][32][kClPix + 1];  // per warp: [channel in chunk][pixel]
  acc_t(*tile)[kClPix + 1] = tiles[threadIdx.y];
  const int lane = threadIdx.x;
  const index_t HW = s.H * s.W, total_tiles = s.N * s.G * cl_tiles_per_plane(s);
  for (index_t t = static_cast<index_t>(blockIdx.x) * kW + threadIdx.y; t < total_tiles;
       t += static_cast<index_t>(gridDim.x) * kW) {
    const ClTile<acc_t, index_t> wt = cl_tile<scalar_t, acc_t>(offsets, t, s, lane);
    scalar_t* dst = out + (wt.n * s.C + wt.g * s.Cg) * HW + wt.pix0;
    for (index_t c0 = 0; c0 < s.Cg; c0 += 32) {
      // Lanes past the group's last channel load channel Cg-1 (in bounds) and
      // store nothing: the loads stay unconditional, so the unrolled pixels'
      // loads are all in flight together.
      const index_t c = c0 + lane < s.Cg ? c0 + lane : s.Cg - 1;
#pragma unroll 4
      for (int p = 0; p < kClPix; ++p) {  // p >= npix: flags 0, nothing stored
        const ClTaps<acc_t, index_t> q = cl_taps<scalar_t, acc_t>(wt.mine, p, x_cl, c, s);
        tile[lane][p] = (q.flags & kClValid) ? q.b.value(q.ly) : nan_value;
      }
      __syncwarp();
      // Coalesced store: one channel row of npix pixels per instruction.
      const int rows = static_cast<int>(s.Cg - c0 < 32 ? s.Cg - c0 : 32);
      if (lane < wt.npix) {
        for (int cc = 0; cc < rows; ++cc) dst[(c0 + cc) * HW + lane] = static_cast<scalar_t>(tile[cc][lane]);
      }
      __syncwarp();
    }
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void __launch_bounds__(32 * ClWarps<acc_t>::bwd) lau_backward_cl_kernel(
    const GeometryT<index_t> s, const scalar_t* __restrict__ grad_out,
    const scalar_t* __restrict__ x_cl, const scalar_t* __restrict__ offsets,
    acc_t* __restrict__ grad_x_cl, scalar_t* __restrict__ grad_off) {
  constexpr int kW = ClWarps<acc_t>::bwd;
  // Per warp: [0] grad_out chunk [channel][pixel], then the dy partial sums
  // [lane][pixel] (written in place of the grad_out value just read);
  // [1] the dx partial sums.
  __shared__ acc_t tiles[kW][2][32][kClPix + 1];
  acc_t(*tile)[kClPix + 1] = tiles[threadIdx.y][0];
  acc_t(*part_x)[kClPix + 1] = tiles[threadIdx.y][1];
  const int lane = threadIdx.x;
  const index_t HW = s.H * s.W, total_tiles = s.N * s.G * cl_tiles_per_plane(s);
  for (index_t t = static_cast<index_t>(blockIdx.x) * kW + threadIdx.y; t < total_tiles;
       t += static_cast<index_t>(gridDim.x) * kW) {
    const ClTile<acc_t, index_t> wt = cl_tile<scalar_t, acc_t>(offsets, t, s, lane);
    acc_t my_gy = acc_t(0), my_gx = acc_t(0);  // offset gradient of pixel `lane`
    const scalar_t* go = grad_out + (wt.n * s.C + wt.g * s.Cg) * HW + wt.pix0;
    for (index_t c0 = 0; c0 < s.Cg; c0 += 32) {
      const int rows = static_cast<int>(s.Cg - c0 < 32 ? s.Cg - c0 : 32);
      // Coalesced load of the [rows x npix] grad_out chunk; missing rows read as 0.
      for (int cc = 0; cc < 32; ++cc) {
        tile[cc][lane] =
            (cc < rows && lane < wt.npix) ? static_cast<acc_t>(go[(c0 + cc) * HW + lane]) : acc_t(0);
      }
      __syncwarp();
      // Lanes past the group's last channel read channel Cg-1 (in bounds) and
      // contribute nothing (gv = 0 from the tile, no atomics).
      const bool active = c0 + lane < s.Cg;
      const index_t c = active ? c0 + lane : s.Cg - 1;
#pragma unroll 2
      for (int p = 0; p < kClPix; ++p) {  // p >= npix: flags 0, nothing stored
        const ClTaps<acc_t, index_t> q = cl_taps<scalar_t, acc_t>(wt.mine, p, x_cl, c, s);
        const int f = q.flags;
        const acc_t gv = tile[lane][p];
        const acc_t ly = q.ly, lx = q.lx;
        const bool use = (f & kClValid) && active;
        // Masked with selects, not products: gv * inf must not leak a NaN.
        const acc_t py = use && (f & kClNeedGy) ? gv * q.b.grad_y(ly) : acc_t(0);
        const acc_t px = use && (f & kClNeedGx) ? gv * q.b.grad_x(lx, ly) : acc_t(0);
        if (use) {
          // Zero-weight taps (integer coordinates, borders) skip their atomics.
          const acc_t gt = gv * (acc_t(1) - ly), gb = gv * ly;
          atomicAdd(grad_x_cl + q.t00 + c, gt * (acc_t(1) - lx));
          if (lx != acc_t(0)) atomicAdd(grad_x_cl + q.t01 + c, gt * lx);
          if (ly != acc_t(0)) {
            atomicAdd(grad_x_cl + q.t00 + q.dy + c, gb * (acc_t(1) - lx));
            if (lx != acc_t(0)) atomicAdd(grad_x_cl + q.t01 + q.dy + c, gb * lx);
          }
        }
        tile[lane][p] = py;  // same lane, same slot as gv: no hazard
        part_x[lane][p] = px;
      }
      __syncwarp();
      // Transpose-and-sum: lane p adds the 32 channel partials of pixel p.
      if (lane < wt.npix) {
        acc_t sy = acc_t(0), sx = acc_t(0);
#pragma unroll 8
        for (int l = 0; l < 32; ++l) {
          sy += tile[l][lane];
          sx += part_x[l][lane];
        }
        my_gy += sy;
        my_gx += sx;
      }
      __syncwarp();
    }
    if (lane < wt.npix) {
      const index_t ob = (wt.n * 2 * s.G + 2 * wt.g) * HW + wt.pix0 + lane;
      const int f = wt.mine.flags;
      const bool ok = f & kClValid;
      grad_off[ob] = static_cast<scalar_t>(ok && (f & kClNeedGy) ? my_gy : acc_t(0));
      grad_off[ob + HW] = static_cast<scalar_t>(ok && (f & kClNeedGx) ? my_gx : acc_t(0));
    }
  }
}

int64_t num_blocks(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  // Grid-stride loops cover the rest; the cap keeps gridDim.x in range.
  return std::min<int64_t>(std::max<int64_t>(blocks, 1), int64_t(1) << 30);
}

int64_t num_tile_blocks(const Geometry& s, int warps_per_block) {
  const int64_t total_tiles = s.N * s.G * cl_tiles_per_plane(s);
  const int64_t blocks = (total_tiles + warps_per_block - 1) / warps_per_block;
  return std::min<int64_t>(std::max<int64_t>(blocks, 1), int64_t(1) << 30);
}

bool fits_int32(const at::Tensor& a, const at::Tensor& b, const Geometry& s) {
  // 2^30 leaves headroom so the grid-stride increment cannot overflow int32.
  const int64_t lim = int64_t(1) << 30;
  return a.numel() < lim && b.numel() < lim && s.N * s.C * s.H * s.W < lim;
}

// The kernel of one direction, family, dtype and index type. Both families
// of a direction share one signature, so the family is a run-time choice.
template <bool kBackward, typename scalar_t, typename acc_t, typename index_t>
auto pick_kernel(bool channels_last) {
  if constexpr (kBackward) {
    return channels_last ? &lau_backward_cl_kernel<scalar_t, acc_t, index_t>
                         : &lau_backward_kernel<scalar_t, acc_t, index_t>;
  } else {
    return channels_last ? &lau_forward_cl_kernel<scalar_t, acc_t, index_t>
                         : &lau_forward_kernel<scalar_t, acc_t, index_t>;
  }
}

// The one launcher of every kernel: the family (per-pixel or channels-last,
// see use_channels_last) with its grid, and the index type, picked as
// torchvision's use_64bits_indexing launchers do: int32 when every index
// fits (cheaper div/mod in the kernels), else int64. Kernels take the
// geometry, then args.
template <bool kBackward, typename scalar_t, typename... Args>
void launch_lau(bool channels_last, bool int32_ok, const Geometry& s, Args... args) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int warps = kBackward ? ClWarps<acc_t>::bwd : ClWarps<acc_t>::fwd;
  const dim3 grid(channels_last ? num_tile_blocks(s, warps) : num_blocks(s.N * s.G * s.H * s.W));
  const dim3 block = channels_last ? dim3(32, warps) : dim3(kThreads);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto launch = [&](const auto geo) {
    const auto kernel = pick_kernel<kBackward, scalar_t, acc_t, decltype(geo.N)>(channels_last);
    kernel<<<grid, block, 0, stream>>>(geo, args...);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  };
  if (int32_ok) {
    launch(s.as<int32_t>());
  } else {
    launch(s);
  }
}

// Kernel choice (measured on an H200, docs/benchmarks_lau_op.md):
// * forward, kAuto: per-pixel. The channels-last forward was as fast at
//   C=150 (k=4) but slower at C=21 and at C=256 (k=2), where the NHWC copy
//   of x costs as much as the gathers save (its taps are L2-bound);
// * backward, kAuto: channels-last when a group has enough channels to fill
//   most lanes of a warp (3-5x faster: coalesced grad_x atomics), else
//   per-pixel.
enum Impl : int64_t { kAuto = 0, kPerPixel = 1, kChannelsLast = 2 };
constexpr int64_t kMinClChannels = 16;

bool use_channels_last(const Geometry& s, int64_t impl, bool backward) {
  TORCH_CHECK(impl == kAuto || impl == kPerPixel || impl == kChannelsLast,
              "lau (CUDA): impl must be 0 (auto), 1 (per-pixel) or 2 (channels-last), got ", impl);
  if (impl == kAuto) return backward && s.Cg >= kMinClChannels;
  return impl == kChannelsLast;
}

at::Tensor lau_forward_cuda_impl(const at::Tensor& x_in, const at::Tensor& offsets_in, int64_t k_h,
                                 int64_t k_w, int64_t impl) {
  check_inputs(x_in, offsets_in, k_h, k_w, "lau_forward");
  TORCH_CHECK(x_in.is_cuda(), "lau_forward (CUDA kernel): x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const Geometry s = make_geometry(x_in, offsets_in, k_h, k_w);
  const bool cl = use_channels_last(s, impl, /*backward=*/false);
  // (N, h, w, C) contiguous; free when x is already channels_last.
  const at::Tensor x = cl ? x_in.permute({0, 2, 3, 1}).contiguous() : x_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  at::Tensor out = at::empty({s.N, s.C, s.H, s.W}, x_in.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_forward_cuda", [&] {
        launch_lau</*kBackward=*/false, scalar_t>(
            cl, fits_int32(x, out, s), s, x.const_data_ptr<scalar_t>(),
            offsets.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
            std::numeric_limits<at::opmath_type<scalar_t>>::quiet_NaN());
      });
  return out;
}

std::tuple<at::Tensor, at::Tensor> lau_backward_cuda_impl(
    const at::Tensor& grad_out_in, const at::Tensor& x_in, const at::Tensor& offsets_in, int64_t k_h,
    int64_t k_w, int64_t impl) {
  check_inputs(x_in, offsets_in, k_h, k_w, "lau_backward");
  check_grad_out(grad_out_in, x_in, k_h, k_w);
  TORCH_CHECK(x_in.is_cuda(), "lau_backward (CUDA kernel): x must be a CUDA tensor");
  TORCH_CHECK(grad_out_in.device() == x_in.device(), "lau_backward: grad_out must be on x's device");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const Geometry s = make_geometry(x_in, offsets_in, k_h, k_w);
  const bool cl = use_channels_last(s, impl, /*backward=*/true);
  const at::Tensor grad_out = grad_out_in.contiguous();
  const at::Tensor x = cl ? x_in.permute({0, 2, 3, 1}).contiguous() : x_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  // Atomics on half/bfloat16 are slow and lossy: accumulate in float32.
  const auto acc_opts = x.options().dtype(grad_x_acc_dtype(x.scalar_type()));
  // cl: grad_x accumulates in (N, h, w, C) so one atomic instruction hits one run of channels.
  at::Tensor gx_acc = cl ? at::zeros({s.N, s.h, s.w, s.C}, acc_opts) : at::zeros({s.N, s.C, s.h, s.w}, acc_opts);
  // Every offset-gradient element is written by exactly one thread.
  at::Tensor grad_off = at::empty(offsets.sizes(), offsets.options());
  const int64_t total = s.N * s.G * s.H * s.W;
  if (total == 0 || x.numel() == 0) {
    grad_off.zero_();
  } else {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_backward_cuda", [&] {
          launch_lau</*kBackward=*/true, scalar_t>(
              cl, fits_int32(x, grad_out, s), s, grad_out.const_data_ptr<scalar_t>(),
              x.const_data_ptr<scalar_t>(), offsets.const_data_ptr<scalar_t>(),
              gx_acc.mutable_data_ptr<at::opmath_type<scalar_t>>(),
              grad_off.mutable_data_ptr<scalar_t>());
        });
  }
  // cl: one pass does NHWC -> NCHW and (for half/bfloat16) the cast back.
  return std::make_tuple(grad_x_from_acc(cl ? gx_acc.permute({0, 3, 1, 2}) : gx_acc, x_in), grad_off);
}

}  // namespace
}  // namespace lau
}  // namespace mmext

// The public ops run the automatic kernel choice.
TORCH_LIBRARY_IMPL(mmext, CUDA, m) {
  using mmext::lau::kAuto;
  m.impl("lau_forward", [](const at::Tensor& x, const at::Tensor& offsets, int64_t k_h, int64_t k_w) {
    return mmext::lau::lau_forward_cuda_impl(x, offsets, k_h, k_w, kAuto);
  });
  m.impl(
      "lau_backward",
      [](const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& offsets, int64_t k_h,
         int64_t k_w) { return mmext::lau::lau_backward_cuda_impl(grad_out, x, offsets, k_h, k_w, kAuto); });
}

// Test and benchmark entry points, kept out of the public `mmext` namespace
// (and CUDA-only, like the choice they override): run one kernel family,
// impl 0 = the automatic choice, 1 = per-pixel, 2 = channels-last.
// Callers: tests/ops/test_lau_cuda_impls.py, tools/gpu_check.sh,
// tools/benchmarks/bench_lau.py.
TORCH_LIBRARY(mmext_testing, m) {
  m.def("lau_forward_impl(Tensor x, Tensor offsets, int k_h, int k_w, int impl) -> Tensor");
  m.def(
      "lau_backward_impl(Tensor grad_out, Tensor x, Tensor offsets, int k_h, int k_w, "
      "int impl) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mmext_testing, CUDA, m) {
  m.impl("lau_forward_impl", &mmext::lau::lau_forward_cuda_impl);
  m.impl("lau_backward_impl", &mmext::lau::lau_backward_cuda_impl);
}
