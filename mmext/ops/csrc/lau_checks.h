// Host-side argument checks shared by the CPU and CUDA kernels. The Python
// wrapper (mmext/ops/lau.py) validates first with friendlier messages; these
// checks protect direct calls of torch.ops.mmext.lau_forward/lau_backward.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace mmext {
namespace lau {

inline void check_inputs(
    const at::Tensor& x,
    const at::Tensor& offsets,
    int64_t k_h,
    int64_t k_w,
    const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D (N, C, h, w), got ", x.dim(), "-D ", x.sizes());
  TORCH_CHECK(
      offsets.dim() == 4, op, ": offsets must be 4-D (N, 2G, k_h*h, k_w*w), got ",
      offsets.dim(), "-D ", offsets.sizes());
  TORCH_CHECK(k_h >= 1 && k_w >= 1, op, ": scale factors must be >= 1, got (", k_h, ", ", k_w, ")");
  TORCH_CHECK(
      x.scalar_type() == offsets.scalar_type(), op, ": x and offsets must share a dtype, got ",
      x.scalar_type(), " and ", offsets.scalar_type());
  TORCH_CHECK(
      at::isFloatingType(x.scalar_type()), op, ": x must be floating point, got ", x.scalar_type());
  TORCH_CHECK(
      x.device() == offsets.device(), op, ": x and offsets must be on one device, got ",
      x.device(), " and ", offsets.device());
  const int64_t two_g = offsets.size(1);
  TORCH_CHECK(two_g >= 2 && two_g % 2 == 0, op, ": offsets.size(1) must be 2*G >= 2, got ", two_g);
  const int64_t G = two_g / 2;
  TORCH_CHECK(
      x.size(1) % G == 0, op, ": the number of groups G=", G, " must divide C=", x.size(1));
  TORCH_CHECK(
      offsets.size(0) == x.size(0) && offsets.size(2) == k_h * x.size(2) &&
          offsets.size(3) == k_w * x.size(3),
      op, ": offsets must have shape (", x.size(0), ", 2G, ", k_h * x.size(2), ", ",
      k_w * x.size(3), "), got ", offsets.sizes());
}

inline void check_grad_out(const at::Tensor& grad_out, const at::Tensor& x, int64_t k_h, int64_t k_w) {
  TORCH_CHECK(
      grad_out.dim() == 4 && grad_out.size(0) == x.size(0) && grad_out.size(1) == x.size(1) &&
          grad_out.size(2) == k_h * x.size(2) && grad_out.size(3) == k_w * x.size(3),
      "lau_backward: grad_out must have shape (", x.size(0), ", ", x.size(1), ", ",
      k_h * x.size(2), ", ", k_w * x.size(3), "), got ", grad_out.sizes());
  TORCH_CHECK(
      grad_out.scalar_type() == x.scalar_type() && grad_out.device() == x.device(),
      "lau_backward: grad_out must match x in dtype and device");
}

}  // namespace lau
}  // namespace mmext
