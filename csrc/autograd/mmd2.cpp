// Autograd of mmd2 for the compiled backends (see autograd.h): the fused mmd2_backward gives
// both inputs' gradients in one pass over the pairs.
#include <torch/library.h>

#include <vector>

#include "autograd/autograd.h"

namespace gankernels {
namespace autograd {
namespace {

using ForwardSig = at::Tensor(const at::Tensor&, const at::Tensor&, at::ArrayRef<double>, bool);
using BackwardSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                       const at::Tensor&, at::ArrayRef<double>,
                                                       bool);

struct Mmd2 : public torch::autograd::Function<Mmd2> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y,
                            at::ArrayRef<double> sigmas, bool unbiased) {
    static const auto op = op_handle<ForwardSig>("gankernels::mmd2");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    at::Tensor value = op.call(x, y, sigmas, unbiased);
    ctx->save_for_backward({x, y});
    ctx->saved_data["sigmas"] = std::vector<double>(sigmas.begin(), sigmas.end());
    ctx->saved_data["unbiased"] = unbiased;
    return value;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto backward_op = op_handle<BackwardSig>("gankernels::mmd2_backward");
    const auto saved = ctx->get_saved_variables();
    const std::vector<double> sigmas = ctx->saved_data["sigmas"].toDoubleVector();
    auto [grad_x, grad_y] =
        call_backward(backward_op, grads[0], saved[0], saved[1], at::ArrayRef<double>(sigmas),
                      ctx->saved_data["unbiased"].toBool());
    return {grad_x, grad_y, at::Tensor(), at::Tensor()};
  }
};

at::Tensor mmd2_autograd(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> sigmas,
                         bool unbiased) {
  return Mmd2::apply(x, y, sigmas, unbiased);
}

}  // namespace
}  // namespace autograd

TORCH_LIBRARY_IMPL(gankernels, Autograd, m) { m.impl("mmd2", &autograd::mmd2_autograd); }

}  // namespace gankernels
