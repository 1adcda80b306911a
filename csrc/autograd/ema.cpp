// ema_'s autograd kernel: like clip_'s (clip.cpp), an in-place update outside any graph. Nothing
// is recorded, and each target's version counter is bumped, so a backward through a graph that
// saved a target before the update raises instead of silently using the new values.
#include <torch/autograd.h>
#include <torch/library.h>

#include "autograd/autograd.h"

namespace gankernels {
namespace {

void ema_autograd(at::TensorList target, at::TensorList source, double decay) {
  static const auto op =
      autograd::op_handle<void(at::TensorList, at::TensorList, double)>("gankernels::ema_");
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    op.call(target, source, decay);
  }
  for (const at::Tensor& t : target) torch::autograd::impl::bump_version(t);
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, Autograd, m) { m.impl("ema_", &ema_autograd); }

}  // namespace gankernels
