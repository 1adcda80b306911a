// Autograd of adversarial_loss for the compiled backends (see autograd.h): the gradients of
// the loss with respect to both critic outputs, in one fused backward call. The weights are
// constants of the loss: they get no gradient.
#include <torch/library.h>

#include <string>

#include "autograd/autograd.h"

namespace gankernels {
namespace autograd {
namespace {

using OptTensor = std::optional<at::Tensor>;
using ForwardSig = at::Tensor(const OptTensor&, const at::Tensor&, c10::string_view,
                              c10::string_view, double, double, double, bool, double, double,
                              const OptTensor&, const OptTensor&, c10::string_view);
using BackwardSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const OptTensor&,
                                                       const at::Tensor&, c10::string_view,
                                                       c10::string_view, double, double, double,
                                                       bool, double, double, const OptTensor&,
                                                       const OptTensor&, c10::string_view);

struct AdversarialLoss : public torch::autograd::Function<AdversarialLoss> {
  static at::Tensor forward(AutogradContext* ctx, const OptTensor& real_out,
                            const at::Tensor& fake_out, const std::string& kind,
                            const std::string& role, double a, double b, double c,
                            bool nonsaturating, double label_smoothing, double margin,
                            const OptTensor& real_weights, const OptTensor& fake_weights,
                            const std::string& reduction) {
    static const auto op = op_handle<ForwardSig>("gankernels::adversarial_loss");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({real_out.value_or(at::Tensor()), fake_out,
                            real_weights.value_or(at::Tensor()),
                            fake_weights.value_or(at::Tensor())});
    auto& data = ctx->saved_data;
    data["kind"] = kind;
    data["role"] = role;
    data["a"] = a;
    data["b"] = b;
    data["c"] = c;
    data["nonsaturating"] = nonsaturating;
    data["label_smoothing"] = label_smoothing;
    data["margin"] = margin;
    data["reduction"] = reduction;
    return op.call(real_out, fake_out, kind, role, a, b, c, nonsaturating, label_smoothing, margin,
                   real_weights, fake_weights, reduction);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto backward_op = op_handle<BackwardSig>("gankernels::adversarial_loss_backward");
    const auto saved = ctx->get_saved_variables();
    const OptTensor real_out = optional_of(saved[0]);
    const auto& data = ctx->saved_data;
    auto [grad_real, grad_fake] = call_backward(
        backward_op, grads[0], real_out, saved[1], data.at("kind").toStringRef(),
        data.at("role").toStringRef(), data.at("a").toDouble(), data.at("b").toDouble(),
        data.at("c").toDouble(), data.at("nonsaturating").toBool(),
        data.at("label_smoothing").toDouble(), data.at("margin").toDouble(), optional_of(saved[2]),
        optional_of(saved[3]), data.at("reduction").toStringRef());
    // The schema's stand-in for a missing real_out's gradient is an empty tensor.
    variable_list result(13);
    result[0] = real_out.has_value() ? grad_real : at::Tensor();
    result[1] = grad_fake;
    return result;
  }
};

at::Tensor adversarial_loss_autograd(const OptTensor& real_out, const at::Tensor& fake_out,
                                     c10::string_view kind, c10::string_view role, double a,
                                     double b, double c, bool nonsaturating, double label_smoothing,
                                     double margin, const OptTensor& real_weights,
                                     const OptTensor& fake_weights, c10::string_view reduction) {
  return AdversarialLoss::apply(real_out, fake_out, std::string(kind), std::string(role), a, b, c,
                                nonsaturating, label_smoothing, margin, real_weights, fake_weights,
                                std::string(reduction));
}

}  // namespace
}  // namespace autograd

TORCH_LIBRARY_IMPL(gankernels, Autograd, m) {
  m.impl("adversarial_loss", &autograd::adversarial_loss_autograd);
}

}  // namespace gankernels
