// Memory layouts the kernels read and write in place (contiguous, channels_last: any dense layout
// with the batch dimension outermost), and the one copy that brings any other tensor into one.
#pragma once

#include <ATen/ATen.h>

#include <optional>

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

// A dense tensor whose memory can be walked as a flat array (any dim order), else a copy.
inline at::Tensor dense(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() ? t : t.contiguous();
}

// `t` as `dtype` values at `layout`'s offsets: itself when it already is, else one copy.
inline at::Tensor values_like(const at::Tensor& t, const at::Tensor& layout, at::ScalarType dtype) {
  if (t.scalar_type() == dtype) return in_layout_of(t, layout);
  return at::empty_like(layout, layout.options().dtype(dtype)).copy_(t);
}

// adversarial_loss's per-element coefficients of one side, as `dtype` (opmath) values at
// `layout`'s offsets: its weights, times the upstream gradient `grad` of reduction "none"
// (defined only then); undefined when both are absent (all ones).
inline at::Tensor loss_coefficients(const std::optional<at::Tensor>& weights,
                                    const at::Tensor& grad, const at::Tensor& layout,
                                    at::ScalarType dtype) {
  at::Tensor c;
  if (weights.has_value()) c = values_like(*weights, layout, dtype);
  if (grad.defined()) {
    const at::Tensor g = values_like(grad, layout, dtype);
    c = c.defined() ? in_layout_of(c * g, layout) : g;
  }
  return c;
}

}  // namespace gankernels
