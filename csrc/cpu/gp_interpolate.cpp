// CPU kernels of gp_interpolate and gp_interpolate_backward (docs/math.md section 1).
//
//   forward   x_hat_ij = eps_i * real_ij + (1 - eps_i) * fake_ij
//   backward  grad_real = eps * g,  grad_fake = (1 - eps) * g,
//             grad_eps_i = sum_j g_ij * (real_ij - fake_ij)      (only when real/fake are given)
//
// One pass over the data each way. Every tensor is brought to one batch-major dense layout (the
// output's, which empty_like takes from `real` / `grad`): contiguous and channels_last inputs
// are used in place, anything else (strided slices, stride-0 expanded gradients) is copied
// once. Sample i is then the contiguous chunk [i * N, (i + 1) * N), so the inner loops are
// plain contiguous loops that GCC vectorises. Half types compute in float32, float64 in float64.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <tuple>

#include "checks.h"
#include "cpu/partition.h"
#include "layout.h"
#include "opmath.h"

namespace gankernels {
namespace {

using at::Tensor;

template <typename scalar_t, typename opmath_t>
inline void interpolate_row(const scalar_t* __restrict r, const scalar_t* __restrict f,
                            scalar_t* __restrict out, int64_t n, opmath_t a, opmath_t b) {
  for (int64_t j = 0; j < n; ++j) {
    out[j] =
        static_cast<scalar_t>(a * static_cast<opmath_t>(r[j]) + b * static_cast<opmath_t>(f[j]));
  }
}

template <typename scalar_t, typename opmath_t>
inline void scale_row(const scalar_t* __restrict g, scalar_t* __restrict grad_real,
                      scalar_t* __restrict grad_fake, int64_t n, opmath_t a, opmath_t b) {
  for (int64_t j = 0; j < n; ++j) {
    const opmath_t gj = static_cast<opmath_t>(g[j]);
    grad_real[j] = static_cast<scalar_t>(a * gj);
    grad_fake[j] = static_cast<scalar_t>(b * gj);
  }
}

Tensor gp_interpolate_cpu(const Tensor& real, const Tensor& fake, const Tensor& eps) {
  constexpr const char* op = "gp_interpolate";
  check_gp_interpolate(real, fake, eps);

  Tensor out = at::empty_like(real);
  const int64_t B = real.size(0), N = real.numel() / B;
  if (N == 0) return out;
  // A dense output whose batch dim is not outermost (a permuted real) is filled through a
  // contiguous buffer; every other case writes the output directly.
  const bool direct = batch_major_dense(out);
  Tensor work = direct ? out : at::empty(real.sizes(), real.options());
  const Tensor r = in_layout_of(real, work);
  const Tensor f = in_layout_of(fake, work);
  const Tensor e = eps.to(opmath_scalar_type(real.scalar_type())).contiguous();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, real.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    const opmath_t* ep = e.const_data_ptr<opmath_t>();
    scalar_t* op_ = work.mutable_data_ptr<scalar_t>();
    cpu::for_each_segment(B, N, [&](int64_t i, int64_t start, int64_t len) {
      interpolate_row<scalar_t, opmath_t>(rp + start, fp + start, op_ + start, len, ep[i],
                                          opmath_t(1) - ep[i]);
    });
  });
  if (!direct) out.copy_(work);
  return out;
}

std::tuple<Tensor, Tensor, Tensor> gp_interpolate_backward_cpu(const Tensor& grad,
                                                               const Tensor& eps,
                                                               const std::optional<Tensor>& real,
                                                               const std::optional<Tensor>& fake) {
  constexpr const char* op = "gp_interpolate_backward";
  check_gp_interpolate_backward(grad, eps, real, fake);
  const bool need_eps = real.has_value();

  const auto opmath = opmath_scalar_type(grad.scalar_type());
  Tensor grad_real = at::empty_like(grad);
  Tensor grad_fake = at::empty_like(grad);
  const int64_t B = grad.size(0), N = grad.numel() / B;
  // Summed in float64 whatever the dtype (see cpu::lane_sum), rounded to eps's dtype at the end.
  Tensor grad_eps = at::empty({B}, eps.options().dtype(at::kDouble));
  if (N == 0) {
    grad_eps.zero_();
    return {grad_real, grad_fake, grad_eps.to(eps.scalar_type())};
  }
  const bool direct = batch_major_dense(grad_real);
  Tensor work_real = direct ? grad_real : at::empty(grad.sizes(), grad.options());
  Tensor work_fake = direct ? grad_fake : at::empty(grad.sizes(), grad.options());
  const Tensor g = in_layout_of(grad, work_real);
  const Tensor e = eps.to(opmath).contiguous();
  Tensor r, f;
  if (need_eps) {
    r = in_layout_of(*real, work_real);
    f = in_layout_of(*fake, work_real);
  }

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const opmath_t* ep = e.const_data_ptr<opmath_t>();
    scalar_t* grp = work_real.mutable_data_ptr<scalar_t>();
    scalar_t* gfp = work_fake.mutable_data_ptr<scalar_t>();
    double* gep = grad_eps.mutable_data_ptr<double>();
    if (!need_eps) {
      cpu::for_each_segment(B, N, [&](int64_t i, int64_t start, int64_t len) {
        scale_row<scalar_t, opmath_t>(gp + start, grp + start, gfp + start, len, ep[i],
                                      opmath_t(1) - ep[i]);
      });
      std::fill(gep, gep + B, 0.0);
      return;
    }
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    // The same pass that scales g also reduces g * (real - fake) for eps's gradient.
    cpu::per_sample_sums(B, N, gep, [&](int64_t i, int64_t start, int64_t len) {
      const opmath_t a = ep[i], b = opmath_t(1) - ep[i];
      const scalar_t* __restrict gs = gp + start;
      const scalar_t* __restrict rs = rp + start;
      const scalar_t* __restrict fs = fp + start;
      scalar_t* __restrict grs = grp + start;
      scalar_t* __restrict gfs = gfp + start;
      return cpu::lane_sum<opmath_t>(len, [&](int64_t j) {
        const opmath_t gj = static_cast<opmath_t>(gs[j]);
        grs[j] = static_cast<scalar_t>(a * gj);
        gfs[j] = static_cast<scalar_t>(b * gj);
        return (static_cast<opmath_t>(rs[j]) - static_cast<opmath_t>(fs[j])) * gj;
      });
    });
  });
  if (!direct) {
    grad_real.copy_(work_real);
    grad_fake.copy_(work_fake);
  }
  return {grad_real, grad_fake, grad_eps.to(eps.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, CPU, m) {
  m.impl("gp_interpolate", &gp_interpolate_cpu);
  m.impl("gp_interpolate_backward", &gp_interpolate_backward_cpu);
}

}  // namespace gankernels
