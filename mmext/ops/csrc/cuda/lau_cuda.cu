// CUDA kernels of the LaU operator, two families:
//
// * per-pixel: one thread per output pixel of a channel group (n, g, i, j):
//   it resolves the sampling coordinate once and loops over the C/G channels
//   of the group. Forward writes C/G outputs; backward scatters grad_x with
//   atomics and reduces the offset gradient over the group's channels in
//   registers, so per-channel offsets are never materialised.
// * channels-last: x read in NHWC, lanes over channels (see below).
// The automatic choice is made in use_channels_last(). Arithmetic is done in
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

template <typename acc_t, typename index_t>
struct ClCoord {
  index_t t00 = 0;  // element index of (y0, x0, channel 0 of the group) in x_cl
  acc_t ly = acc_t(0), lx = acc_t(0);
  int flags = 0;
};

template <typename scalar_t, typename acc_t, typename index_t>
__device__ __forceinline__ ClCoord<acc_t, index_t> cl_resolve(
    const scalar_t* __restrict__ offsets, index_t n, index_t g, index_t pix, index_t C,
    index_t G, index_t Cg, index_t h, index_t w, index_t W, index_t HW, index_t k_h,
    index_t k_w) {
  ClCoord<acc_t, index_t> q;
  const index_t i = pix / W, j = pix - i * W;
  const scalar_t* off = offsets + (n * 2 * G + 2 * g) * HW + pix;
  const acc_t py = static_cast<acc_t>(i) / static_cast<acc_t>(k_h) + static_cast<acc_t>(off[0]);
  const acc_t px = static_cast<acc_t>(j) / static_cast<acc_t>(k_w) + static_cast<acc_t>(off[HW]);
  Axis<acc_t> ay, ax;
  const bool oky = resolve_axis<acc_t>(py, h, ay);
  const bool okx = resolve_axis<acc_t>(px, w, ax);
  q.t00 = ((n * h + static_cast<index_t>(ay.i0)) * w + static_cast<index_t>(ax.i0)) * C + g * Cg;
  q.ly = ay.frac;
  q.lx = ax.frac;
  q.flags = ((oky && okx) ? kClValid : 0) | (ay.gmask != acc_t(0) ? kClNeedGy : 0) |
            (ax.gmask != acc_t(0) ? kClNeedGx : 0) | (ax.i1 != ax.i0 ? kClDx : 0) |
            (ay.i1 != ay.i0 ? kClDy : 0);
  return q;
}

// Tile t of the flattened (n, g, pixel-tile) space.
template <typename index_t>
__device__ __forceinline__ void cl_tile(index_t t, index_t tiles_per_plane, index_t G, index_t& n,
                                        index_t& g, index_t& pix0) {
  const index_t ng = t / tiles_per_plane;
  pix0 = (t - ng * tiles_per_plane) * kClPix;
  g = ng % G;
  n = ng / G;
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void __launch_bounds__(32 * ClWarps<acc_t>::fwd) lau_forward_cl_kernel(
    const scalar_t* __restrict__ x_cl, const scalar_t* __restrict__ offsets,
    scalar_t* __restrict__ out, index_t tiles_per_plane, index_t total_tiles, index_t C,
    index_t G, index_t Cg, index_t h, index_t w, index_t H, index_t W, index_t k_h, index_t k_w,
    acc_t nan_value) {
  constexpr int kW = ClWarps<acc_t>::fwd;
  __shared__ acc_t tiles[kW][32][kClPix + 1];  // per warp: [channel in chunk][pixel]
  acc_t(*tile)[kClPix + 1] = tiles[threadIdx.y];
  const int lane = threadIdx.x;
  const index_t HW = H * W, wC = w * C;
  for (index_t t = static_cast<index_t>(blockIdx.x) * kW + threadIdx.y; t < total_tiles;
       t += static_cast<index_t>(gridDim.x) * kW) {
    index_t n, g, pix0;
    cl_tile(t, tiles_per_plane, G, n, g, pix0);
    const int npix = static_cast<int>(HW - pix0 < kClPix ? HW - pix0 : kClPix);
    ClCoord<acc_t, index_t> mine;
    if (lane < npix) {
      mine = cl_resolve<scalar_t, acc_t, index_t>(offsets, n, g, pix0 + lane, C, G, Cg, h, w, W,
                                                  HW, k_h, k_w);
    }
    scalar_t* dst = out + (n * C + g * Cg) * HW + pix0;
    for (index_t c0 = 0; c0 < Cg; c0 += 32) {
      // Lanes past the group's last channel load channel Cg-1 (in bounds) and
      // store nothing: the loads stay unconditional, so the unrolled pixels'
      // loads are all in flight together.
      const index_t c = c0 + lane < Cg ? c0 + lane : Cg - 1;
#pragma unroll 4
      for (int p = 0; p < kClPix; ++p) {  // p >= npix: flags 0, nothing stored
        const index_t t00 = __shfl_sync(0xffffffffu, mine.t00, p);
        const acc_t ly = __shfl_sync(0xffffffffu, mine.ly, p);
        const acc_t lx = __shfl_sync(0xffffffffu, mine.lx, p);
        const int f = __shfl_sync(0xffffffffu, mine.flags, p);
        // Taps of an invalid (NaN) or missing pixel resolve to valid indices.
        const index_t t01 = t00 + ((f & kClDx) ? C : index_t(0));
        const index_t dy = (f & kClDy) ? wC : index_t(0);
        const acc_t a00 = static_cast<acc_t>(x_cl[t00 + c]);
        const acc_t a01 = static_cast<acc_t>(x_cl[t01 + c]);
        const acc_t a10 = static_cast<acc_t>(x_cl[t00 + dy + c]);
        const acc_t a11 = static_cast<acc_t>(x_cl[t01 + dy + c]);
        const acc_t top = a00 + lx * (a01 - a00);
        const acc_t bot = a10 + lx * (a11 - a10);
        tile[lane][p] = (f & kClValid) ? top + ly * (bot - top) : nan_value;
      }
      __syncwarp();
      // Coalesced store: one channel row of npix pixels per instruction.
      const int rows = static_cast<int>(Cg - c0 < 32 ? Cg - c0 : 32);
      if (lane < npix) {
        for (int cc = 0; cc < rows; ++cc) dst[(c0 + cc) * HW + lane] = static_cast<scalar_t>(tile[cc][lane]);
      }
      __syncwarp();
    }
  }
}

template <typename scalar_t, typename acc_t, typename index_t>
__global__ void __launch_bounds__(32 * ClWarps<acc_t>::bwd) lau_backward_cl_kernel(
    const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ x_cl,
    const scalar_t* __restrict__ offsets, acc_t* __restrict__ grad_x_cl,
    scalar_t* __restrict__ grad_off, index_t tiles_per_plane, index_t total_tiles, index_t C,
    index_t G, index_t Cg, index_t h, index_t w, index_t H, index_t W, index_t k_h,
    index_t k_w) {
  constexpr int kW = ClWarps<acc_t>::bwd;
  // Per warp: [0] grad_out chunk [channel][pixel], then the dy partial sums
  // [lane][pixel] (written in place of the grad_out value just read);
  // [1] the dx partial sums.
  __shared__ acc_t tiles[kW][2][32][kClPix + 1];
  acc_t(*tile)[kClPix + 1] = tiles[threadIdx.y][0];
  acc_t(*part_x)[kClPix + 1] = tiles[threadIdx.y][1];
  const int lane = threadIdx.x;
  const index_t HW = H * W, wC = w * C;
  for (index_t t = static_cast<index_t>(blockIdx.x) * kW + threadIdx.y; t < total_tiles;
       t += static_cast<index_t>(gridDim.x) * kW) {
    index_t n, g, pix0;
    cl_tile(t, tiles_per_plane, G, n, g, pix0);
    const int npix = static_cast<int>(HW - pix0 < kClPix ? HW - pix0 : kClPix);
    ClCoord<acc_t, index_t> mine;
    if (lane < npix) {
      mine = cl_resolve<scalar_t, acc_t, index_t>(offsets, n, g, pix0 + lane, C, G, Cg, h, w, W,
                                                  HW, k_h, k_w);
    }
    acc_t my_gy = acc_t(0), my_gx = acc_t(0);  // offset gradient of pixel `lane`
    const scalar_t* go = grad_out + (n * C + g * Cg) * HW + pix0;
    for (index_t c0 = 0; c0 < Cg; c0 += 32) {
      const int rows = static_cast<int>(Cg - c0 < 32 ? Cg - c0 : 32);
      // Coalesced load of the [rows x npix] grad_out chunk; missing rows read as 0.
      for (int cc = 0; cc < 32; ++cc) {
        tile[cc][lane] = (cc < rows && lane < npix) ? static_cast<acc_t>(go[(c0 + cc) * HW + lane]) : acc_t(0);
      }
      __syncwarp();
      // Lanes past the group's last channel read channel Cg-1 (in bounds) and
      // contribute nothing (gv = 0 from the tile, no atomics).
      const bool active = c0 + lane < Cg;
      const index_t c = active ? c0 + lane : Cg - 1;
#pragma unroll 2
      for (int p = 0; p < kClPix; ++p) {  // p >= npix: flags 0, nothing stored
        const index_t t00 = __shfl_sync(0xffffffffu, mine.t00, p);
        const acc_t ly = __shfl_sync(0xffffffffu, mine.ly, p);
        const acc_t lx = __shfl_sync(0xffffffffu, mine.lx, p);
        const int f = __shfl_sync(0xffffffffu, mine.flags, p);
        const acc_t gv = tile[lane][p];
        // Unconditional (always in-bounds) tap loads, masked below.
        const index_t t01 = t00 + ((f & kClDx) ? C : index_t(0));
        const index_t dy = (f & kClDy) ? wC : index_t(0);
        const acc_t a00 = static_cast<acc_t>(x_cl[t00 + c]);
        const acc_t a01 = static_cast<acc_t>(x_cl[t01 + c]);
        const acc_t a10 = static_cast<acc_t>(x_cl[t00 + dy + c]);
        const acc_t a11 = static_cast<acc_t>(x_cl[t01 + dy + c]);
        const acc_t top = a00 + lx * (a01 - a00);
        const acc_t bot = a10 + lx * (a11 - a10);
        const bool use = (f & kClValid) && active;
        // Masked with selects, not products: gv * inf must not leak a NaN.
        const acc_t py = use && (f & kClNeedGy) ? gv * (bot - top) : acc_t(0);
        const acc_t px =
            use && (f & kClNeedGx) ? gv * ((a01 - a00) + ly * ((a11 - a10) - (a01 - a00))) : acc_t(0);
        if (use) {
          // Zero-weight taps (integer coordinates, borders) skip their atomics.
          const acc_t gt = gv * (acc_t(1) - ly), gb = gv * ly;
          atomicAdd(grad_x_cl + t00 + c, gt * (acc_t(1) - lx));
          if (lx != acc_t(0)) atomicAdd(grad_x_cl + t01 + c, gt * lx);
          if (ly != acc_t(0)) {
            atomicAdd(grad_x_cl + t00 + dy + c, gb * (acc_t(1) - lx));
            if (lx != acc_t(0)) atomicAdd(grad_x_cl + t01 + dy + c, gb * lx);
          }
        }
        tile[lane][p] = py;  // same lane, same slot as gv: no hazard
        part_x[lane][p] = px;
      }
      __syncwarp();
      // Transpose-and-sum: lane p adds the 32 channel partials of pixel p.
      if (lane < npix) {
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
    if (lane < npix) {
      const index_t ob = (n * 2 * G + 2 * g) * HW + pix0 + lane;
      const bool ok = mine.flags & kClValid;
      grad_off[ob] = static_cast<scalar_t>(ok && (mine.flags & kClNeedGy) ? my_gy : acc_t(0));
      grad_off[ob + HW] = static_cast<scalar_t>(ok && (mine.flags & kClNeedGx) ? my_gx : acc_t(0));
    }
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

int64_t num_tile_blocks(int64_t total_tiles, int warps_per_block) {
  const int64_t blocks = (total_tiles + warps_per_block - 1) / warps_per_block;
  return std::min<int64_t>(std::max<int64_t>(blocks, 1), int64_t(1) << 30);
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
  const int64_t total = s.N * s.G * s.H * s.W;
  const int64_t tiles = (s.H * s.W + kClPix - 1) / kClPix;
  const int64_t total_tiles = s.N * s.G * tiles;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const bool small = fits_int32(x, out, s);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const acc_t nan_value = std::numeric_limits<acc_t>::quiet_NaN();
        constexpr int cl_warps = ClWarps<acc_t>::fwd;
        const dim3 cl_block(32, cl_warps);
        if (cl && small) {
          lau_forward_cl_kernel<scalar_t, acc_t, int32_t>
              <<<num_tile_blocks(total_tiles, cl_warps), cl_block, 0, stream>>>(
                  x.const_data_ptr<scalar_t>(), offsets.const_data_ptr<scalar_t>(),
                  out.mutable_data_ptr<scalar_t>(), static_cast<int32_t>(tiles),
                  static_cast<int32_t>(total_tiles), static_cast<int32_t>(s.C),
                  static_cast<int32_t>(s.G), static_cast<int32_t>(s.Cg), static_cast<int32_t>(s.h),
                  static_cast<int32_t>(s.w), static_cast<int32_t>(s.H), static_cast<int32_t>(s.W),
                  static_cast<int32_t>(k_h), static_cast<int32_t>(k_w), nan_value);
        } else if (cl) {
          lau_forward_cl_kernel<scalar_t, acc_t, int64_t>
              <<<num_tile_blocks(total_tiles, cl_warps), cl_block, 0, stream>>>(
                  x.const_data_ptr<scalar_t>(), offsets.const_data_ptr<scalar_t>(),
                  out.mutable_data_ptr<scalar_t>(), tiles, total_tiles, s.C, s.G, s.Cg, s.h, s.w,
                  s.H, s.W, k_h, k_w, nan_value);
        } else if (small) {
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
  const bool reduced = x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
  const auto acc_opts = x.options().dtype(reduced ? at::kFloat : x.scalar_type());
  // cl: grad_x accumulates in (N, h, w, C) so one atomic instruction hits one run of channels.
  at::Tensor gx_acc = cl ? at::zeros({s.N, s.h, s.w, s.C}, acc_opts) : at::zeros({s.N, s.C, s.h, s.w}, acc_opts);
  // Every offset-gradient element is written by exactly one thread.
  at::Tensor grad_off = at::empty(offsets.sizes(), offsets.options());
  const int64_t total = s.N * s.G * s.H * s.W;
  if (total == 0 || x.numel() == 0) {
    grad_off.zero_();
  } else {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    const bool small = fits_int32(x, grad_out, s);
    const int64_t tiles = (s.H * s.W + kClPix - 1) / kClPix;
    const int64_t total_tiles = s.N * s.G * tiles;
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_backward_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          constexpr int cl_warps = ClWarps<acc_t>::bwd;
          const dim3 cl_block(32, cl_warps);
          if (cl && small) {
            lau_backward_cl_kernel<scalar_t, acc_t, int32_t>
                <<<num_tile_blocks(total_tiles, cl_warps), cl_block, 0, stream>>>(
                    grad_out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                    offsets.const_data_ptr<scalar_t>(), gx_acc.mutable_data_ptr<acc_t>(),
                    grad_off.mutable_data_ptr<scalar_t>(), static_cast<int32_t>(tiles),
                    static_cast<int32_t>(total_tiles), static_cast<int32_t>(s.C),
                    static_cast<int32_t>(s.G), static_cast<int32_t>(s.Cg),
                    static_cast<int32_t>(s.h), static_cast<int32_t>(s.w),
                    static_cast<int32_t>(s.H), static_cast<int32_t>(s.W),
                    static_cast<int32_t>(k_h), static_cast<int32_t>(k_w));
          } else if (cl) {
            lau_backward_cl_kernel<scalar_t, acc_t, int64_t>
                <<<num_tile_blocks(total_tiles, cl_warps), cl_block, 0, stream>>>(
                    grad_out.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                    offsets.const_data_ptr<scalar_t>(), gx_acc.mutable_data_ptr<acc_t>(),
                    grad_off.mutable_data_ptr<scalar_t>(), tiles, total_tiles, s.C, s.G, s.Cg,
                    s.h, s.w, s.H, s.W, k_h, k_w);
          } else if (small) {
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
  if (cl) {
    // One pass: NHWC -> NCHW and (for half/bfloat16) the cast back.
    at::Tensor grad_x = at::empty({s.N, s.C, s.h, s.w}, x_in.options().memory_format(at::MemoryFormat::Contiguous));
    grad_x.copy_(gx_acc.permute({0, 3, 1, 2}));
    return std::make_tuple(grad_x, grad_off);
  }
  at::Tensor grad_x = reduced ? gx_acc.to(x.scalar_type()) : gx_acc;
  return std::make_tuple(grad_x, grad_off);
}

at::Tensor lau_forward_cuda(const at::Tensor& x, const at::Tensor& offsets, int64_t k_h, int64_t k_w) {
  return lau_forward_cuda_impl(x, offsets, k_h, k_w, kAuto);
}

std::tuple<at::Tensor, at::Tensor> lau_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& offsets, int64_t k_h,
    int64_t k_w) {
  return lau_backward_cuda_impl(grad_out, x, offsets, k_h, k_w, kAuto);
}

}  // namespace
}  // namespace lau
}  // namespace mmext

TORCH_LIBRARY_IMPL(mmext, CUDA, m) {
  m.impl("lau_forward", &mmext::lau::lau_forward_cuda);
  m.impl("lau_backward", &mmext::lau::lau_backward_cuda);
  m.impl("_lau_forward_impl", &mmext::lau::lau_forward_cuda_impl);
  m.impl("_lau_backward_impl", &mmext::lau::lau_backward_cuda_impl);
}
