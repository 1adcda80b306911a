// Autograd of adversarial_loss for the compiled backends (see autograd.h): the gradients of
// the mean loss with respect to both critic outputs, in one fused backward call.
#include <torch/library.h>

#include <string>

#include "autograd/autograd.h"

namespace gankernels {
namespace autograd {
namespace {

using ForwardSig = at::Tensor(const std::optional<at::Tensor>&, const at::Tensor&, c10::string_view,
                              c10::string_view, double, double, double, bool);
using BackwardSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&,
                                                       const std::optional<at::Tensor>&,
                                                       const at::Tensor&, c10::string_view,
                                                       c10::string_view, double, double, double,
                                                       bool);

struct AdversarialLoss : public torch::autograd::Function<AdversarialLoss> {
  static at::Tensor forward(AutogradContext* ctx, const std::optional<at::Tensor>& real_out,
                            const at::Tensor& fake_out, const std::string& kind,
                            const std::string& role, double a, double b, double c,
                            bool nonsaturating) {
    static const auto op = op_handle<ForwardSig>("gankernels::adversarial_loss");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({real_out.value_or(at::Tensor()), fake_out});
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["role"] = role;
    ctx->saved_data["a"] = a;
    ctx->saved_data["b"] = b;
    ctx->saved_data["c"] = c;
    ctx->saved_data["nonsaturating"] = nonsaturating;
    return op.call(real_out, fake_out, kind, role, a, b, c, nonsaturating);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto backward_op = op_handle<BackwardSig>("gankernels::adversarial_loss_backward");
    const auto saved = ctx->get_saved_variables();
    const std::optional<at::Tensor> real_out = optional_of(saved[0]);
    const auto& data = ctx->saved_data;
    auto [grad_real, grad_fake] = call_backward(
        backward_op, grads[0], real_out, saved[1], data.at("kind").toStringRef(),
        data.at("role").toStringRef(), data.at("a").toDouble(), data.at("b").toDouble(),
        data.at("c").toDouble(), data.at("nonsaturating").toBool());
    // The schema's stand-in for a missing real_out's gradient is an empty tensor.
    return {real_out.has_value() ? grad_real : at::Tensor(),
            grad_fake,
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

at::Tensor adversarial_loss_autograd(const std::optional<at::Tensor>& real_out,
                                     const at::Tensor& fake_out, c10::string_view kind,
                                     c10::string_view role, double a, double b, double c,
                                     bool nonsaturating) {
  return AdversarialLoss::apply(real_out, fake_out, std::string(kind), std::string(role), a, b, c,
                                nonsaturating);
}

}  // namespace
}  // namespace autograd

TORCH_LIBRARY_IMPL(gankernels, Autograd, m) {
  m.impl("adversarial_loss", &autograd::adversarial_loss_autograd);
}

}  // namespace gankernels
