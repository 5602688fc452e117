// Operator schemas of the mmext LaU op. Kernels are registered per device in
// cpu/lau_cpu.cpp and cuda/lau_cuda.cu; the fake (meta) kernels and autograd
// are registered from Python (mmext/ops/_extension.py) with torch.library.
#include <torch/library.h>

TORCH_LIBRARY(mmext, m) {
  // x: (N, C, h, w); offsets: (N, 2G, k_h*h, k_w*w) -> (N, C, k_h*h, k_w*w)
  m.def(
      "lau_forward(Tensor x, Tensor offsets, int k_h, int k_w) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  // -> (grad_x: (N, C, h, w), grad_offsets: (N, 2G, k_h*h, k_w*w))
  m.def(
      "lau_backward(Tensor grad_out, Tensor x, Tensor offsets, int k_h, "
      "int k_w) -> (Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
  // CUDA only, for tests and benchmarks: run one kernel family explicitly
  // (impl 0 = automatic choice, 1 = per-pixel, 2 = channels-last).
  m.def("_lau_forward_impl(Tensor x, Tensor offsets, int k_h, int k_w, int impl) -> Tensor");
  m.def(
      "_lau_backward_impl(Tensor grad_out, Tensor x, Tensor offsets, int k_h, int k_w, "
      "int impl) -> (Tensor, Tensor)");
}
