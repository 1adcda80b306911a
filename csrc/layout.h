// Memory layouts the kernels read and write in place (contiguous, channels_last: any dense layout
// with the batch dimension outermost), and the one copy that brings any other tensor into one.
#pragma once

#include <ATen/ATen.h>

namespace gankernels {

// True when t is non-overlapping and dense with the batch dim outermost: sample i is then the
// contiguous chunk [i * N, (i + 1) * N) of t's memory (N = numel / B), in whatever order the
// other dims are laid out. Contiguous and channels_last tensors both qualify.
inline bool batch_major_dense(const at::Tensor& t) {
  if (t.dim() == 0 || !t.is_non_overlapping_and_dense()) return false;
  return t.size(0) == 1 || t.stride(0) == t.numel() / t.size(0);
}

// True when a and b have the same shape and place every element at the same memory offset
// (strides of size-1 dims do not matter).
inline bool same_layout(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  }
  return true;
}

// `t` itself when it already has `layout`'s memory layout, else one copy of it in that layout
// (layout must be dense): expanded (stride-0) or strided inputs take this path.
inline at::Tensor in_layout_of(const at::Tensor& t, const at::Tensor& layout) {
  if (same_layout(t, layout) && t.is_non_overlapping_and_dense()) return t;
  return at::empty_like(layout, t.options()).copy_(t);
}

}  // namespace gankernels
