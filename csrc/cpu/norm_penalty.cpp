// CPU kernels of norm_penalty and norm_penalty_backward (docs/math.md section 2).
//
//   forward   n_i = ||inv_scale * g_i||_2,  P = weight / B * sum_i phi(n_i - target)
//             phi(d) = d^2, or max(d, 0)^2 when one_sided
//   backward  dL/dg_ij = c_i * inv_scale^2 * g_ij / n_i,
//             c_i = grad_loss * weight / B * phi'(n_i - target) + grad_norms_i,
//             0 on a zero row; for target == 0, phi'(n) / n is exactly 2 (no division).
//
// The forward reads g once: per-sample sums of squares over fixed blocks (so the summation
// order, and the result, do not depend on the thread count), then the loss summed in sample
// order. The backward is one elementwise pass with one coefficient per sample. Sums accumulate
// in float32 for half types (a half square overflows past |g| ~ 256) and float64 for float64.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "checks.h"
#include "cpu/partition.h"
#include "layout.h"
#include "opmath.h"

namespace gankernels {
namespace {

using at::Tensor;

std::tuple<Tensor, Tensor> norm_penalty_cpu(const Tensor& grad, double target, double weight,
                                            bool one_sided, double inv_scale) {
  constexpr const char* op = "norm_penalty";
  check_norm_penalty(grad, target, weight, inv_scale);

  const auto opmath = opmath_scalar_type(grad.scalar_type());
  const int64_t B = grad.size(0), N = grad.numel() / B;
  Tensor norms = at::empty({B}, grad.options().dtype(opmath));
  Tensor loss = at::empty({}, grad.options().dtype(opmath));
  // Only the grouping of elements into samples matters for sums of squares, not their order
  // inside a sample, so any batch-major dense layout is read in place.
  const Tensor g = batch_major_dense(grad) ? grad : grad.contiguous();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const opmath_t s = static_cast<opmath_t>(inv_scale);
    std::vector<double> sq(static_cast<size_t>(B));
    cpu::per_sample_sums(B, N, sq.data(), [&](int64_t, int64_t start, int64_t len) {
      const scalar_t* __restrict x = gp + start;
      return cpu::lane_sum<opmath_t>(len, [&](int64_t j) {
        const opmath_t v = s * static_cast<opmath_t>(x[j]);
        return v * v;
      });
    });
    // B scalars: float64 costs nothing here, and the loss is rounded to opmath_t once, at the end.
    opmath_t* np = norms.mutable_data_ptr<opmath_t>();
    double total = 0;
    for (int64_t i = 0; i < B; ++i) {
      const double n = std::sqrt(sq[i]);
      np[i] = static_cast<opmath_t>(n);
      double d = n - target;
      // std::max(NaN, 0) keeps the NaN, as clamp_min does.
      if (one_sided) d = std::max(d, 0.0);
      total += d * d;
    }
    *loss.mutable_data_ptr<opmath_t>() =
        static_cast<opmath_t>(weight * (total / static_cast<double>(B)));
  });
  return {loss, norms};
}

Tensor norm_penalty_backward_cpu(const Tensor& grad_loss, const std::optional<Tensor>& grad_norms,
                                 const Tensor& grad, const Tensor& norms, double target,
                                 double weight, bool one_sided, double inv_scale) {
  constexpr const char* op = "norm_penalty_backward";
  check_norm_penalty_backward(grad_loss, grad_norms, grad, norms, target, weight, inv_scale);

  const auto opmath = opmath_scalar_type(grad.scalar_type());
  const int64_t B = grad.size(0), N = grad.numel() / B;
  Tensor out = at::empty_like(grad);
  if (N == 0) return out;
  const bool direct = batch_major_dense(out);
  Tensor work = direct ? out : at::empty(grad.sizes(), grad.options());
  const Tensor g = in_layout_of(grad, work);
  // grad_loss stays a device tensor: the kernel reads it, the host never syncs on it.
  const Tensor gl = grad_loss.to(opmath);
  const Tensor n = norms.to(opmath).contiguous();
  const Tensor gn = grad_norms.has_value() ? grad_norms->to(opmath).contiguous() : Tensor();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t* np = n.const_data_ptr<opmath_t>();
    const opmath_t* gnp = gn.defined() ? gn.const_data_ptr<opmath_t>() : nullptr;
    const opmath_t loss_coef =
        *gl.const_data_ptr<opmath_t>() * static_cast<opmath_t>(weight / static_cast<double>(B));
    const opmath_t s2 = static_cast<opmath_t>(inv_scale * inv_scale);
    const opmath_t k = static_cast<opmath_t>(target);
    std::vector<opmath_t> coef(static_cast<size_t>(B));
    for (int64_t i = 0; i < B; ++i) {
      const opmath_t ni = np[i];
      opmath_t ratio;  // phi'(n_i - target) / n_i
      if (target == 0 && std::isfinite(ni)) {
        ratio = 2;
      } else if (ni == 0) {
        ratio = 0;
      } else {
        opmath_t d = ni - k;
        if (one_sided) d = std::max(d, opmath_t(0));
        ratio = 2 * d / ni;
      }
      opmath_t c = loss_coef * ratio;
      if (gnp != nullptr && ni != 0) c += gnp[i] / ni;
      coef[i] = s2 * c;
    }
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* wp = work.mutable_data_ptr<scalar_t>();
    cpu::for_each_segment(B, N, [&](int64_t i, int64_t start, int64_t len) {
      const scalar_t* __restrict x = gp + start;
      scalar_t* __restrict y = wp + start;
      const opmath_t c = coef[i];
      for (int64_t j = 0; j < len; ++j)
        y[j] = static_cast<scalar_t>(c * static_cast<opmath_t>(x[j]));
    });
  });
  if (!direct) out.copy_(work);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, CPU, m) {
  m.impl("norm_penalty", &norm_penalty_cpu);
  m.impl("norm_penalty_backward", &norm_penalty_backward_cpu);
}

}  // namespace gankernels
