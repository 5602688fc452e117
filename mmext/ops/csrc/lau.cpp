// Public operator schemas of the mmext LaU op (user-facing ops only; the
// test-only kernel selectors live in the `mmext_testing` namespace, defined
// next to their CUDA kernels in cuda/lau_cuda.cu). Kernels are registered per
// device in cpu/lau_cpu.cpp and cuda/lau_cuda.cu; the fake (meta) kernels and
// autograd are registered from Python (mmext/ops/_extension.py) with torch.library.
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
}
