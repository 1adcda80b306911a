// Shared pieces of the autograd kernels (csrc/autograd/*.cpp), registered for the Autograd
// dispatch key so that every compiled backend (CPU and CUDA) gets the same autograd in C++.
//
// First-order backward runs the fused `<op>_backward` kernel below autograd: no Python and no
// autograd bookkeeping on the hot path. A backward taken with grad mode on (create_graph=True,
// gradgradcheck) calls `<op>_backward` through the dispatcher instead, so that its autograd
// (registered from Python, gankernels/ops/registry.py) records it: its derivative is taken
// through the reference, differentiable to any order (docs/math.md section 2).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <optional>

namespace gankernels {
namespace autograd {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The typed handle of gankernels::<name>, looked up once.
template <typename Signature>
c10::TypedOperatorHandle<Signature> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// Calls `backward_op` with `args`: below autograd for a first-order backward, through autograd
// when the backward itself is being recorded (grad mode on).
template <typename Signature, typename... Args>
auto call_backward(const c10::TypedOperatorHandle<Signature>& backward_op, Args&&... args) {
  if (at::GradMode::is_enabled()) {
    return backward_op.call(std::forward<Args>(args)...);
  }
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return backward_op.call(std::forward<Args>(args)...);
}

// A saved optional tensor back as an optional (undefined means it was None).
inline std::optional<at::Tensor> optional_of(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

}  // namespace autograd
}  // namespace gankernels
