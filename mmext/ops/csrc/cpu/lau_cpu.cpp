// CPU kernels of the LaU operator (forward, backward to x and to offsets).
//
// Work is split by output rows: for one (n, g, i) row the tap indices and
// fractions of all W pixels are computed once into small buffers and reused
// for every channel of the group, so the inner channel loop is a plain
// gather/lerp over a contiguous output row.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "../lau_checks.h"
#include "../lau_common.h"

namespace mmext {
namespace lau {
namespace {

// Per-row tap table, one entry per output column j.
template <typename acc_t>
struct RowTaps {
  std::vector<int64_t> o00, o01, o10, o11;  // flat input indices of the 4 taps
  std::vector<acc_t> ly, lx;                // fractions (ly = NaN marks a NaN pixel in forward)
  std::vector<acc_t> my, mx;                // gradient masks (0 for clamped / NaN)
  std::vector<acc_t> gy, gx;                // offset-gradient accumulators
  std::vector<uint8_t> ok;                  // 0 for a NaN coordinate
  explicit RowTaps(int64_t W)
      : o00(W), o01(W), o10(W), o11(W), ly(W), lx(W), my(W), mx(W), gy(W), gx(W), ok(W) {}
};

// Fill the tap table of output row i of group g of image n.
// for_forward: a NaN coordinate gets ly = NaN so that the lerp yields NaN;
// for backward it gets zero weights so that it contributes no gradient.
template <typename scalar_t, typename acc_t>
void compute_row_taps(
    const scalar_t* offsets, const Geometry& s, int64_t n, int64_t g, int64_t i,
    bool for_forward, RowTaps<acc_t>& t) {
  const int64_t HW = s.H * s.W;
  const scalar_t* dy = offsets + (n * 2 * s.G + 2 * g) * HW + i * s.W;
  const scalar_t* dx = dy + HW;
  const acc_t base_y = static_cast<acc_t>(i) / static_cast<acc_t>(s.k_h);
  for (int64_t j = 0; j < s.W; ++j) {
    const acc_t base_x = static_cast<acc_t>(j) / static_cast<acc_t>(s.k_w);
    Axis<acc_t> ay, ax;
    const bool oky = resolve_axis<acc_t>(base_y + static_cast<acc_t>(dy[j]), s.h, ay);
    const bool okx = resolve_axis<acc_t>(base_x + static_cast<acc_t>(dx[j]), s.w, ax);
    const bool ok = oky && okx;
    t.ok[j] = ok ? 1 : 0;
    t.o00[j] = ay.i0 * s.w + ax.i0;
    t.o01[j] = ay.i0 * s.w + ax.i1;
    t.o10[j] = ay.i1 * s.w + ax.i0;
    t.o11[j] = ay.i1 * s.w + ax.i1;
    if (ok) {
      t.ly[j] = ay.frac;
      t.lx[j] = ax.frac;
      t.my[j] = ay.gmask;
      t.mx[j] = ax.gmask;
    } else {
      // Indices are valid (0) either way, so no read can go out of bounds.
      t.ly[j] = for_forward ? std::numeric_limits<acc_t>::quiet_NaN() : acc_t(0);
      t.lx[j] = acc_t(0);
      t.my[j] = acc_t(0);
      t.mx[j] = acc_t(0);
    }
  }
}

template <typename scalar_t>
void forward_impl(const at::Tensor& x, const at::Tensor& offsets, at::Tensor& out, const Geometry& s) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  const scalar_t* op = offsets.const_data_ptr<scalar_t>();
  scalar_t* outp = out.mutable_data_ptr<scalar_t>();
  const int64_t hw = s.h * s.w, HW = s.H * s.W;
  const int64_t rows = s.N * s.G * s.H;
  // ~32k output elements per task keeps scheduling overhead negligible.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, s.W * s.Cg));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    RowTaps<acc_t> t(s.W);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % s.H;
      const int64_t g = (r / s.H) % s.G;
      const int64_t n = r / (s.H * s.G);
      compute_row_taps<scalar_t, acc_t>(op, s, n, g, i, /*for_forward=*/true, t);
      for (int64_t cg = 0; cg < s.Cg; ++cg) {
        const int64_t c = g * s.Cg + cg;
        const scalar_t* src = xp + (n * s.C + c) * hw;
        scalar_t* dst = outp + (n * s.C + c) * HW + i * s.W;
        for (int64_t j = 0; j < s.W; ++j) {
          const Bilinear<acc_t> b = gather_taps<acc_t>(src, t.o00[j], t.o01[j], t.o10[j], t.o11[j], t.lx[j]);
          dst[j] = static_cast<scalar_t>(b.value(t.ly[j]));
        }
      }
    }
  });
}

// Backward over rows [i_begin, i_end) of group g of image n, channels
// [c_begin, c_end) of that group. DO_GX scatters into gx (acc_t, (N, C, h, w));
// DO_GOFF writes the offset gradient of those rows (needs the full group).
template <typename scalar_t, typename acc_t, bool DO_GX, bool DO_GOFF>
void backward_rows(
    const scalar_t* gop, const scalar_t* xp, const scalar_t* op, acc_t* gxp, scalar_t* goffp,
    const Geometry& s, int64_t n, int64_t g, int64_t i_begin, int64_t i_end, int64_t c_begin,
    int64_t c_end, RowTaps<acc_t>& t) {
  const int64_t hw = s.h * s.w, HW = s.H * s.W;
  for (int64_t i = i_begin; i < i_end; ++i) {
    compute_row_taps<scalar_t, acc_t>(op, s, n, g, i, /*for_forward=*/false, t);
    if (DO_GOFF) {
      std::fill(t.gy.begin(), t.gy.end(), acc_t(0));
      std::fill(t.gx.begin(), t.gx.end(), acc_t(0));
    }
    for (int64_t cg = c_begin; cg < c_end; ++cg) {
      const int64_t c = g * s.Cg + cg;
      const scalar_t* src = xp + (n * s.C + c) * hw;
      const scalar_t* go = gop + (n * s.C + c) * HW + i * s.W;
      acc_t* gsrc = DO_GX ? gxp + (n * s.C + c) * hw : nullptr;
      for (int64_t j = 0; j < s.W; ++j) {
        const acc_t gv = static_cast<acc_t>(go[j]);
        const acc_t ly = t.ly[j], lx = t.lx[j];
        if (DO_GOFF) {
          const Bilinear<acc_t> b = gather_taps<acc_t>(src, t.o00[j], t.o01[j], t.o10[j], t.o11[j], lx);
          t.gy[j] += gv * b.grad_y(ly);
          t.gx[j] += gv * b.grad_x(lx, ly);
        }
        if (DO_GX) {
          if (!t.ok[j]) continue;  // a NaN coordinate scatters nothing
          gsrc[t.o00[j]] += gv * (acc_t(1) - ly) * (acc_t(1) - lx);
          gsrc[t.o01[j]] += gv * (acc_t(1) - ly) * lx;
          gsrc[t.o10[j]] += gv * ly * (acc_t(1) - lx);
          gsrc[t.o11[j]] += gv * ly * lx;
        }
      }
    }
    if (DO_GOFF) {
      scalar_t* gdy = goffp + (n * 2 * s.G + 2 * g) * HW + i * s.W;
      scalar_t* gdx = gdy + HW;
      for (int64_t j = 0; j < s.W; ++j) {
        // Select, not multiply: a clamped coordinate has exactly zero gradient.
        gdy[j] = static_cast<scalar_t>(t.my[j] != acc_t(0) ? t.gy[j] : acc_t(0));
        gdx[j] = static_cast<scalar_t>(t.mx[j] != acc_t(0) ? t.gx[j] : acc_t(0));
      }
    }
  }
}

template <typename scalar_t>
void backward_impl(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& offsets, at::Tensor& gx_acc,
    at::Tensor& grad_off, const Geometry& s) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* gop = grad_out.const_data_ptr<scalar_t>();
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  const scalar_t* op = offsets.const_data_ptr<scalar_t>();
  acc_t* gxp = gx_acc.mutable_data_ptr<acc_t>();
  scalar_t* goffp = grad_off.mutable_data_ptr<scalar_t>();
  const int64_t NG = s.N * s.G;
  const int64_t nthreads = at::get_num_threads();
  if (NG % nthreads == 0 || NG >= 4 * nthreads) {
    // Fused: one task owns a whole (n, g) slab, i.e. its grad_x planes and its
    // offset gradients, so taps are computed once and there are no races.
    at::parallel_for(0, NG, 1, [&](int64_t begin, int64_t end) {
      RowTaps<acc_t> t(s.W);
      for (int64_t r = begin; r < end; ++r) {
        backward_rows<scalar_t, acc_t, true, true>(
            gop, xp, op, gxp, goffp, s, r / s.G, r % s.G, 0, s.H, 0, s.Cg, t);
      }
    });
    return;
  }
  // Too few (n, g) slabs to feed all threads: two race-free passes.
  // Pass 1, offset gradients: parallel over output rows, channels reduced in-row.
  const int64_t grain_rows = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, s.W * s.Cg));
  at::parallel_for(0, NG * s.H, grain_rows, [&](int64_t begin, int64_t end) {
    RowTaps<acc_t> t(s.W);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % s.H, ng = r / s.H;
      backward_rows<scalar_t, acc_t, false, true>(
          gop, xp, op, gxp, goffp, s, ng / s.G, ng % s.G, i, i + 1, 0, s.Cg, t);
    }
  });
  // Pass 2, grad_x: parallel over (n, c) planes, each written by one task only.
  at::parallel_for(0, s.N * s.C, 1, [&](int64_t begin, int64_t end) {
    RowTaps<acc_t> t(s.W);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / s.C, c = r % s.C, g = c / s.Cg, cg = c % s.Cg;
      backward_rows<scalar_t, acc_t, true, false>(
          gop, xp, op, gxp, goffp, s, n, g, 0, s.H, cg, cg + 1, t);
    }
  });
}

at::Tensor lau_forward_cpu(const at::Tensor& x_in, const at::Tensor& offsets_in, int64_t k_h, int64_t k_w) {
  check_inputs(x_in, offsets_in, k_h, k_w, "lau_forward");
  TORCH_CHECK(x_in.device().is_cpu(), "lau_forward (CPU kernel): x must be a CPU tensor");
  const at::Tensor x = x_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const Geometry s = make_geometry(x, offsets, k_h, k_w);
  at::Tensor out = at::empty({s.N, s.C, s.H, s.W}, x.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_forward_cpu",
      [&] { forward_impl<scalar_t>(x, offsets, out, s); });
  return out;
}

std::tuple<at::Tensor, at::Tensor> lau_backward_cpu(
    const at::Tensor& grad_out_in, const at::Tensor& x_in, const at::Tensor& offsets_in, int64_t k_h,
    int64_t k_w) {
  check_inputs(x_in, offsets_in, k_h, k_w, "lau_backward");
  check_grad_out(grad_out_in, x_in, k_h, k_w);
  TORCH_CHECK(x_in.device().is_cpu(), "lau_backward (CPU kernel): x must be a CPU tensor");
  const at::Tensor grad_out = grad_out_in.contiguous();
  const at::Tensor x = x_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const Geometry s = make_geometry(x, offsets, k_h, k_w);
  // Reduced-precision grad_x is accumulated in float32 and cast at the end.
  at::Tensor gx_acc = at::zeros(x.sizes(), x.options().dtype(grad_x_acc_dtype(x.scalar_type())));
  at::Tensor grad_off = at::zeros(offsets.sizes(), offsets.options());
  if (grad_out.numel() != 0 && x.numel() != 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "lau_backward_cpu",
        [&] { backward_impl<scalar_t>(grad_out, x, offsets, gx_acc, grad_off, s); });
  }
  return std::make_tuple(grad_x_from_acc(gx_acc, x), grad_off);
}

}  // namespace
}  // namespace lau
}  // namespace mmext

TORCH_LIBRARY_IMPL(mmext, CPU, m) {
  m.impl("lau_forward", &mmext::lau::lau_forward_cpu);
  m.impl("lau_backward", &mmext::lau::lau_backward_cpu);
}
