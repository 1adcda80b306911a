// Autograd of gp_interpolate for the compiled backends (see autograd.h):
//   d/dreal = eps * g,  d/dfake = (1 - eps) * g,  d/deps_i = sum_j g_ij (real_ij - fake_ij).
#include <torch/library.h>

#include "autograd/autograd.h"

namespace gankernels {
namespace autograd {
namespace {

using ForwardSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&);
using BackwardSig = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
    const std::optional<at::Tensor>&);

struct GpInterpolate : public torch::autograd::Function<GpInterpolate> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& real, const at::Tensor& fake,
                            const at::Tensor& eps) {
    static const auto op = op_handle<ForwardSig>("gankernels::gp_interpolate");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    // real and fake are only read for eps's gradient: keep them alive only when it is wanted.
    const bool need_eps = eps.requires_grad();
    ctx->save_for_backward({eps, need_eps ? real : at::Tensor(), need_eps ? fake : at::Tensor()});
    return op.call(real, fake, eps);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto backward_op = op_handle<BackwardSig>("gankernels::gp_interpolate_backward");
    const auto saved = ctx->get_saved_variables();
    const std::optional<at::Tensor> real = optional_of(saved[1]), fake = optional_of(saved[2]);
    auto [grad_real, grad_fake, grad_eps] =
        call_backward(backward_op, grads[0], saved[0], real, fake);
    return {grad_real, grad_fake, real.has_value() ? grad_eps : at::Tensor()};
  }
};

at::Tensor gp_interpolate_autograd(const at::Tensor& real, const at::Tensor& fake,
                                   const at::Tensor& eps) {
  return GpInterpolate::apply(real, fake, eps);
}

}  // namespace
}  // namespace autograd

TORCH_LIBRARY_IMPL(gankernels, Autograd, m) {
  m.impl("gp_interpolate", &autograd::gp_interpolate_autograd);
}

}  // namespace gankernels
