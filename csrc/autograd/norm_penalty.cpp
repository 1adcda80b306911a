// Autograd of norm_penalty for the compiled backends (see autograd.h). Both outputs are
// differentiable: dP/dg_ij = weight / B * phi'(n_i - target) * inv_scale^2 * g_ij / n_i and
// dn_i/dg_ij = inv_scale^2 * g_ij / n_i, 0 on a zero row.
#include <torch/library.h>

#include "autograd/autograd.h"

namespace gankernels {
namespace autograd {
namespace {

using ForwardSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, double, double, bool,
                                                      double);
using BackwardSig = at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&,
                               const at::Tensor&, const at::Tensor&, double, double, bool, double);

struct NormPenalty : public torch::autograd::Function<NormPenalty> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad, double target,
                               double weight, bool one_sided, double inv_scale) {
    static const auto op = op_handle<ForwardSig>("gankernels::norm_penalty");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [loss, norms] = op.call(grad, target, weight, one_sided, inv_scale);
    ctx->save_for_backward({grad, norms});
    ctx->saved_data["target"] = target;
    ctx->saved_data["weight"] = weight;
    ctx->saved_data["one_sided"] = one_sided;
    ctx->saved_data["inv_scale"] = inv_scale;
    // An unused output's gradient stays undefined: the norms' is then skipped, not zero-filled.
    ctx->set_materialize_grads(false);
    return {loss, norms};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto backward_op = op_handle<BackwardSig>("gankernels::norm_penalty_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& grad = saved[0];
    const at::Tensor& norms = saved[1];
    const at::Tensor grad_loss = grads[0].defined() ? grads[0] : at::zeros({}, norms.options());
    const at::Tensor grad_input = call_backward(
        backward_op, grad_loss, optional_of(grads[1]), grad, norms,
        ctx->saved_data["target"].toDouble(), ctx->saved_data["weight"].toDouble(),
        ctx->saved_data["one_sided"].toBool(), ctx->saved_data["inv_scale"].toDouble());
    return {grad_input, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> norm_penalty_autograd(const at::Tensor& grad, double target,
                                                         double weight, bool one_sided,
                                                         double inv_scale) {
  auto outputs = NormPenalty::apply(grad, target, weight, one_sided, inv_scale);
  return {outputs[0], outputs[1]};
}

}  // namespace
}  // namespace autograd

TORCH_LIBRARY_IMPL(gankernels, Autograd, m) {
  m.impl("norm_penalty", &autograd::norm_penalty_autograd);
}

}  // namespace gankernels
