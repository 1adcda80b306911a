// The schemas of every gankernels op, in one place. Backends register in csrc/cpu/*.cpp and
// csrc/cuda/*.cu, autograd in csrc/autograd/*.cpp; fake kernels, the second-order autograd of
// the backward ops and Triton live on the Python side (gankernels/ops).
#include <torch/library.h>

TORCH_LIBRARY(gankernels, m) {
  // x_hat = eps * real + (1 - eps) * fake, one eps per sample (eps has shape [B]).
  m.def("gp_interpolate(Tensor real, Tensor fake, Tensor eps) -> Tensor");
  // (grad_real, grad_fake, grad_eps); grad_eps is zeros unless real and fake are given.
  m.def(
      "gp_interpolate_backward(Tensor grad, Tensor eps, Tensor? real, Tensor? fake)"
      " -> (Tensor, Tensor, Tensor)");

  // (loss, norms): n_i = ||inv_scale * grad_i||, loss = weight / B * sum_i phi(n_i - target).
  m.def(
      "norm_penalty(Tensor grad, float target, float weight, bool one_sided, float inv_scale)"
      " -> (Tensor, Tensor)");
  m.def(
      "norm_penalty_backward(Tensor grad_loss, Tensor? grad_norms, Tensor grad, Tensor norms,"
      " float target, float weight, bool one_sided, float inv_scale) -> Tensor");

  // The adversarial loss of one role ("critic" or "generator") for one kind, weighted and
  // reduced ("mean", "sum", or "none": per element, shaped like fake_out).
  m.def(
      "adversarial_loss(Tensor? real_out, Tensor fake_out, str kind, str role,"
      " float a=-1., float b=1., float c=0., bool nonsaturating=False,"
      " float label_smoothing=0., float margin=1., Tensor? real_weights=None,"
      " Tensor? fake_weights=None, str reduction=\"mean\") -> Tensor");
  // (grad_real, grad_fake); grad_real is empty when real_out is None.
  m.def(
      "adversarial_loss_backward(Tensor grad_loss, Tensor? real_out, Tensor fake_out, str kind,"
      " str role, float a, float b, float c, bool nonsaturating, float label_smoothing,"
      " float margin, Tensor? real_weights, Tensor? fake_weights, str reduction)"
      " -> (Tensor, Tensor)");

  // In-place clamp of every tensor to [-c, c]; returns the count of elements left at +-c.
  m.def("clip_(Tensor(a!)[] params, float c) -> Tensor");

  // In-place moving average t <- t + (1 - decay) * (s - t) of every (target, source) pair.
  m.def("ema_(Tensor(a!)[] target, Tensor[] source, float decay) -> ()");

  // Squared MMD between the rows of x [B, D] and y [B', D] under the kernel
  // sum_s exp(-||a - b||^2 / (2 s^2)); unbiased or biased estimate; a 0-dim opmath tensor.
  m.def("mmd2(Tensor x, Tensor y, float[] sigmas, bool unbiased) -> Tensor");
  // (grad_x, grad_y), contiguous, for the 0-dim upstream gradient `grad`.
  m.def(
      "mmd2_backward(Tensor grad, Tensor x, Tensor y, float[] sigmas, bool unbiased)"
      " -> (Tensor, Tensor)");
}
