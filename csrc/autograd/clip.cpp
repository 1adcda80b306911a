// clip_'s autograd kernel. Clipping updates parameters outside any graph, as `with
// torch.no_grad(): p.clamp_(-c, c)` does: nothing is recorded, so parameters that require grad
// are clamped in place without a Python no_grad block around the call. Like that in-place
// update, it bumps each parameter's version counter, so a backward through a graph that saved a
// parameter before the clip raises instead of silently using the clipped values.
#include <torch/autograd.h>
#include <torch/library.h>

#include "autograd/autograd.h"

namespace gankernels {
namespace {

at::Tensor clip_autograd(at::TensorList params, double c) {
  static const auto op =
      autograd::op_handle<at::Tensor(at::TensorList, double)>("gankernels::clip_");
  at::Tensor count;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    count = op.call(params, c);
  }
  for (const at::Tensor& p : params) torch::autograd::impl::bump_version(p);
  return count;
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, Autograd, m) { m.impl("clip_", &clip_autograd); }

}  // namespace gankernels
