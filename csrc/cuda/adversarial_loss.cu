// CUDA kernels of adversarial_loss and adversarial_loss_backward (math.md section 3).
//
// The loss of each (kind, role) is the two mean terms of csrc/loss_terms.h:
//
//     L = sign_r * mean_j F_r(v_r,j - shift_r) + const_r  +  sign_g * mean_j F_g(v_g,j - shift_g)
//         + const_g
//
// For relativistic (RaGAN) each shift is the mean of the OTHER array, and the gradient gains
// the mean of the other term's derivative:
//
//     dL/dx_k = sign_x / N_x * F_x'(x_k - m_y)  -  sign_y / N_x * mean_j F_y'(y_j - m_x).
//
// Launches (no host synchronisation anywhere: grad_loss is read from device memory in-kernel):
//   * small inputs (N_r + N_g <= kSmall, the usual critic outputs): ONE block does everything,
//     forward and backward, relativistic included (its means are block reductions first);
//   * large, every kind but relativistic: forward ONE launch (both arrays reduced together,
//     per-block partials, the last block adds them in order: deterministic, no atomics, plus a
//     memset of the completion counters); backward ONE elementwise launch;
//   * large relativistic: forward 2 launches (the means, then the loss), backward 3 (the means,
//     the derivative means, then the elementwise pass): each needs a global result first.
// Sums accumulate in float32 (float64 for float64 inputs); half inputs are read as float32.
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

#include "checks.h"
#include "loss_terms.h"
#include "utils.cuh"

namespace gankernels {
namespace cuda {
namespace {

using at::Tensor;

// Inputs up to this many elements (both arrays together) are handled by a single block.
constexpr int64_t kSmall = 8192;

// ---- device side --------------------------------------------------------------------------------

template <typename acc_t>
struct DevTerm {
  Fn fn;
  acc_t sign, shift, constant;
};

template <typename acc_t>
DevTerm<acc_t> dev_term(const Term& t) {
  return {t.fn, static_cast<acc_t>(t.sign), static_cast<acc_t>(t.shift),
          static_cast<acc_t>(t.constant)};
}

template <typename scalar_t>
struct LossArgs {
  using acc_t = opmath_t<scalar_t>;
  const scalar_t* real;  // nullptr when the loss does not read v_r
  const scalar_t* fake;
  int64_t n_real, n_fake;
  bool aligned_real, aligned_fake;
  int blocks_real, blocks_fake;  // blocks sharing each array; a 1-block grid does both
  DevTerm<acc_t> term_real, term_fake;
  bool use_real, relativistic;
};

// What a reduction launch sums per element, and where its result goes.
enum class Stage : int {
  Means,        // v                       -> stats[0] = m_r, stats[1] = m_g
  Loss,         // F(v - shift)            -> *loss
  DerivMeans,   // F'(v - shift)           -> stats[2] = D_r, stats[3] = D_g
};

// This thread's share of sum_k eval(x_k) over one array, which `blocks` blocks starting at
// `first` walk together (zero for the other blocks).
template <typename scalar_t, typename Eval>
__device__ __forceinline__ opmath_t<scalar_t> share_sum(const scalar_t* __restrict__ x, int64_t n,
                                                        bool aligned, int first, int blocks,
                                                        Eval&& eval) {
  using acc_t = opmath_t<scalar_t>;
  acc_t acc = 0;
  const int b = static_cast<int>(blockIdx.x) - first;
  if (x == nullptr || b < 0 || b >= blocks) return acc;
  for_range<Vec<scalar_t>::size>(
      0, n, b * kBlock + threadIdx.x, blocks * kBlock, aligned,
      [&](int64_t k) {
        const Pack<scalar_t> p = load_pack(x + k);
#pragma unroll
        for (int j = 0; j < Vec<scalar_t>::size; ++j) acc += eval(static_cast<acc_t>(p.v[j]));
      },
      [&](int64_t k) { acc += eval(static_cast<acc_t>(x[k])); });
  return acc;
}

// Sums of eval_r over v_r and eval_g over v_g, each block-reduced (valid in every thread).
template <typename scalar_t, typename EvalR, typename EvalG>
__device__ __forceinline__ void block_side_sums(const LossArgs<scalar_t>& a, EvalR&& eval_r,
                                                EvalG&& eval_g, opmath_t<scalar_t>& sum_r,
                                                opmath_t<scalar_t>& sum_g) {
  const int first_fake = static_cast<int>(gridDim.x) - a.blocks_fake;
  sum_r = block_sum<kBlock>(share_sum(a.use_real ? a.real : nullptr, a.n_real, a.aligned_real, 0,
                                      a.blocks_real, eval_r));
  sum_g = block_sum<kBlock>(share_sum(a.fake, a.n_fake, a.aligned_fake, first_fake,
                                      a.blocks_fake, eval_g));
}

// The relativistic statistics of a single-block launch, computed in-block: stats[0..1] the
// means, and with `derivs` stats[2..3] the derivative means.
template <typename scalar_t>
__device__ void block_relativistic_stats(const LossArgs<scalar_t>& a, bool derivs,
                                         opmath_t<scalar_t>* stats) {
  using acc_t = opmath_t<scalar_t>;
  acc_t sr, sg;
  block_side_sums(a, [](acc_t v) { return v; }, [](acc_t v) { return v; }, sr, sg);
  stats[0] = sr / static_cast<acc_t>(a.n_real);
  stats[1] = sg / static_cast<acc_t>(a.n_fake);
  if (!derivs) return;
  const acc_t shift_r = a.term_real.shift + stats[1], shift_g = a.term_fake.shift + stats[0];
  block_side_sums(
      a, [&](acc_t v) { return fn_deriv(a.term_real.fn, v - shift_r); },
      [&](acc_t v) { return fn_deriv(a.term_fake.fn, v - shift_g); }, sr, sg);
  stats[2] = sr / static_cast<acc_t>(a.n_real);
  stats[3] = sg / static_cast<acc_t>(a.n_fake);
}

// One reduction stage over both arrays. partials: [2 * gridDim.x]; stats: [4] (read for the
// shifts of a relativistic Loss / DerivMeans stage, written by Means / DerivMeans); with a
// 1-block grid and stats == nullptr, a relativistic Loss stage computes its means in-block.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    adversarial_reduce_kernel(LossArgs<scalar_t> a, Stage stage, opmath_t<scalar_t>* stats,
                              opmath_t<scalar_t>* __restrict__ loss,
                              opmath_t<scalar_t>* __restrict__ partials, unsigned* counter) {
  using acc_t = opmath_t<scalar_t>;
  acc_t shift_r = a.term_real.shift, shift_g = a.term_fake.shift;
  if (a.relativistic && stage != Stage::Means) {
    acc_t local[4];
    const acc_t* s = stats;
    if (s == nullptr) {  // single block: the means first, in-block
      block_relativistic_stats(a, /*derivs=*/false, local);
      s = local;
    }
    shift_r += s[1];
    shift_g += s[0];
  }
  acc_t sr, sg;
  if (stage == Stage::Means) {
    block_side_sums(a, [](acc_t v) { return v; }, [](acc_t v) { return v; }, sr, sg);
  } else if (stage == Stage::Loss) {
    block_side_sums(
        a, [&](acc_t v) { return fn_value(a.term_real.fn, v - shift_r); },
        [&](acc_t v) { return fn_value(a.term_fake.fn, v - shift_g); }, sr, sg);
  } else {
    block_side_sums(
        a, [&](acc_t v) { return fn_deriv(a.term_real.fn, v - shift_r); },
        [&](acc_t v) { return fn_deriv(a.term_fake.fn, v - shift_g); }, sr, sg);
  }
  if (gridDim.x > 1) {
    if (threadIdx.x == 0) {
      partials[2 * blockIdx.x] = sr;
      partials[2 * blockIdx.x + 1] = sg;
    }
    if (!last_block(counter)) return;
    acc_t r = 0, g = 0;
    for (int64_t b = threadIdx.x; b < gridDim.x; b += kBlock) {
      r += __ldcg(partials + 2 * b);
      g += __ldcg(partials + 2 * b + 1);
    }
    sr = block_sum<kBlock>(r);
    sg = block_sum<kBlock>(g);
  }
  if (threadIdx.x != 0) return;
  const acc_t mean_r = a.use_real ? sr / static_cast<acc_t>(a.n_real) : acc_t(0);
  const acc_t mean_g = sg / static_cast<acc_t>(a.n_fake);
  if (stage == Stage::Loss) {
    acc_t value = a.term_fake.sign * mean_g + a.term_fake.constant;
    if (a.use_real) value += a.term_real.sign * mean_r + a.term_real.constant;
    *loss = value;
  } else {
    const int at = stage == Stage::Means ? 0 : 2;
    stats[at] = mean_r;
    stats[at + 1] = mean_g;
  }
}

// grad_x = grad_loss * (sign_x / N_x * F_x'(x - shift_x) + add_x), elementwise over both
// arrays; grad_real is all zeros when the loss does not read v_r. With a 1-block grid and
// stats == nullptr, a relativistic loss computes its statistics in-block first.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    adversarial_grad_kernel(LossArgs<scalar_t> a, const opmath_t<scalar_t>* __restrict__ grad_loss,
                            const opmath_t<scalar_t>* stats, scalar_t* __restrict__ grad_real,
                            scalar_t* __restrict__ grad_fake, int64_t n_grad_real,
                            bool aligned_gr, bool aligned_gf) {
  using acc_t = opmath_t<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const acc_t gl = *grad_loss;
  acc_t shift_r = a.term_real.shift, shift_g = a.term_fake.shift;
  acc_t add_r = 0, add_g = 0;
  if (a.relativistic) {
    acc_t local[4];
    const acc_t* s = stats;
    if (s == nullptr) {
      block_relativistic_stats(a, /*derivs=*/true, local);
      s = local;
    }
    shift_r += s[1];
    shift_g += s[0];
    // d/dx_k of sign_y * mean_j F_y(y_j - m_x) = -sign_y * mean_j F_y'(y_j - m_x) / N_x.
    add_r = -a.term_fake.sign * s[3] / static_cast<acc_t>(a.n_real);
    add_g = -a.term_real.sign * s[2] / static_cast<acc_t>(a.n_fake);
  }

  // v_r's share: blocks [0, blocks_real).
  if (grad_real != nullptr && static_cast<int>(blockIdx.x) < a.blocks_real) {
    const int lane = blockIdx.x * kBlock + threadIdx.x, team = a.blocks_real * kBlock;
    if (a.use_real) {
      const acc_t scale = a.term_real.sign / static_cast<acc_t>(a.n_real);
      const auto grad = [&](acc_t v) {
        return static_cast<scalar_t>(gl * (scale * fn_deriv(a.term_real.fn, v - shift_r) + add_r));
      };
      for_range<V>(
          0, a.n_real, lane, team, a.aligned_real && aligned_gr,
          [&](int64_t k) {
            const Pack<scalar_t> x = load_pack(a.real + k);
            Pack<scalar_t> y;
#pragma unroll
            for (int j = 0; j < V; ++j) y.v[j] = grad(static_cast<acc_t>(x.v[j]));
            store_pack(grad_real + k, y);
          },
          [&](int64_t k) { grad_real[k] = grad(static_cast<acc_t>(a.real[k])); });
    } else {
      for_range<V>(
          0, n_grad_real, lane, team, aligned_gr,
          [&](int64_t k) {
            Pack<scalar_t> y;
#pragma unroll
            for (int j = 0; j < V; ++j) y.v[j] = static_cast<scalar_t>(0);
            store_pack(grad_real + k, y);
          },
          [&](int64_t k) { grad_real[k] = static_cast<scalar_t>(0); });
    }
  }
  // v_g's share: the last blocks_fake blocks.
  const int b = static_cast<int>(blockIdx.x) - (static_cast<int>(gridDim.x) - a.blocks_fake);
  if (b >= 0) {
    const acc_t scale = a.term_fake.sign / static_cast<acc_t>(a.n_fake);
    const auto grad = [&](acc_t v) {
      return static_cast<scalar_t>(gl * (scale * fn_deriv(a.term_fake.fn, v - shift_g) + add_g));
    };
    for_range<V>(
        0, a.n_fake, b * kBlock + threadIdx.x, a.blocks_fake * kBlock,
        a.aligned_fake && aligned_gf,
        [&](int64_t k) {
          const Pack<scalar_t> x = load_pack(a.fake + k);
          Pack<scalar_t> y;
#pragma unroll
          for (int j = 0; j < V; ++j) y.v[j] = grad(static_cast<acc_t>(x.v[j]));
          store_pack(grad_fake + k, y);
        },
        [&](int64_t k) { grad_fake[k] = grad(static_cast<acc_t>(a.fake[k])); });
  }
}

// ---- host side ----------------------------------------------------------------------------------

Plan check_and_plan(const std::optional<Tensor>& real_out, const Tensor& fake_out,
                    c10::string_view kind, c10::string_view role, double a, double b, double c,
                    bool nonsaturating) {
  const LossChoice choice = check_adversarial_loss(real_out, fake_out, kind, role);
  return make_plan(choice.kind, choice.critic, a, b, c, nonsaturating);
}

// A dense tensor whose memory can be walked as a flat array (any dim order), else a copy.
Tensor dense(const Tensor& t) { return t.is_non_overlapping_and_dense() ? t : t.contiguous(); }

// Blocks for one array of a multi-block launch: about four packs per thread, at most half the
// resident blocks each.
int blocks_for(int64_t n, int vec, c10::DeviceIndex device) {
  if (n == 0) return 0;
  const int64_t per_block = static_cast<int64_t>(kBlock) * vec * 4;
  return static_cast<int>(
      std::max<int64_t>(1, std::min(ceil_div(n, per_block), resident_blocks(device) / 2)));
}

template <typename scalar_t>
LossArgs<scalar_t> loss_args(const Plan& plan, const Tensor& real, const Tensor& fake,
                             bool single_block, c10::DeviceIndex device) {
  using acc_t = opmath_t<scalar_t>;
  LossArgs<scalar_t> a{};
  a.use_real = plan.use_real;
  a.relativistic = plan.relativistic;
  a.term_real = dev_term<acc_t>(plan.real);
  a.term_fake = dev_term<acc_t>(plan.fake);
  a.fake = fake.const_data_ptr<scalar_t>();
  a.n_fake = fake.numel();
  a.aligned_fake = aligned16(a.fake);
  if (real.defined()) {
    a.real = real.const_data_ptr<scalar_t>();
    a.n_real = real.numel();
    a.aligned_real = aligned16(a.real);
  }
  constexpr int V = Vec<scalar_t>::size;
  if (single_block) {
    a.blocks_real = 1;
    a.blocks_fake = 1;
  } else {
    a.blocks_real = blocks_for(a.n_real, V, device);
    a.blocks_fake = blocks_for(a.n_fake, V, device);
  }
  return a;
}

Tensor adversarial_loss_cuda(const std::optional<Tensor>& real_out, const Tensor& fake_out,
                             c10::string_view kind, c10::string_view role, double a, double b,
                             double c, bool nonsaturating) {
  const Plan plan = check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating);
  const c10::cuda::CUDAGuard guard(fake_out.device());
  const Tensor fake = dense(fake_out);
  const Tensor real = plan.use_real ? dense(*real_out) : Tensor();
  const auto acc = acc_scalar_type(fake_out.scalar_type());
  Tensor loss = at::empty({}, fake_out.options().dtype(acc));
  const int64_t total = fake.numel() + (real.defined() ? real.numel() : 0);
  const bool single = total <= kSmall;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto device = fake_out.device().index();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, fake.scalar_type(),
                                  "adversarial_loss", [&] {
    using acc_t = opmath_t<scalar_t>;
    const LossArgs<scalar_t> args = loss_args<scalar_t>(plan, real, fake, single, device);
    if (single) {
      adversarial_reduce_kernel<scalar_t><<<1, kBlock, 0, stream>>>(
          args, Stage::Loss, nullptr, loss.mutable_data_ptr<acc_t>(), nullptr, nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    const int grid = args.blocks_real + args.blocks_fake;
    // One buffer: [4] statistics, then [2 * grid] partials; 2 counters in one memset.
    Tensor work = at::empty({4 + 2 * grid}, fake.options().dtype(acc));
    acc_t* stats = work.mutable_data_ptr<acc_t>();
    Tensor counters = at::empty({2}, fake.options().dtype(at::kInt));
    C10_CUDA_CHECK(cudaMemsetAsync(counters.data_ptr(), 0, 2 * sizeof(int), stream));
    unsigned* counter = reinterpret_cast<unsigned*>(counters.data_ptr<int>());
    if (plan.relativistic) {
      adversarial_reduce_kernel<scalar_t><<<grid, kBlock, 0, stream>>>(
          args, Stage::Means, stats, nullptr, stats + 4, counter);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      ++counter;
    }
    adversarial_reduce_kernel<scalar_t><<<grid, kBlock, 0, stream>>>(
        args, Stage::Loss, stats, loss.mutable_data_ptr<acc_t>(), stats + 4, counter);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return loss;
}

// The output gradient in `input`'s layout (empty_like, as the fake kernel), plus the buffer in
// the dense source's layout that the kernel writes (the same tensor unless they differ).
std::pair<Tensor, Tensor> grad_out_for(const Tensor& input, const Tensor& src) {
  Tensor out = at::empty_like(input);
  if (same_layout(out, src)) return {out, out};
  return {out, at::empty_like(src)};
}

std::tuple<Tensor, Tensor> adversarial_loss_backward_cuda(
    const Tensor& grad_loss, const std::optional<Tensor>& real_out, const Tensor& fake_out,
    c10::string_view kind, c10::string_view role, double a, double b, double c,
    bool nonsaturating) {
  const Plan plan = check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating);
  check_adversarial_loss_grad(grad_loss, fake_out);

  const c10::cuda::CUDAGuard guard(fake_out.device());
  const auto acc = acc_scalar_type(fake_out.scalar_type());
  // Stays on the device: the kernel reads it. A no-op (no launch) on the autograd path.
  const Tensor gl = grad_loss.to(acc);
  const Tensor fake = dense(fake_out);
  // v_r is read when the loss uses it; otherwise only its zero gradient is written.
  const Tensor real = real_out.has_value() ? dense(*real_out) : Tensor();
  Tensor gf_out, gf_buf, gr_out, gr_buf;
  std::tie(gf_out, gf_buf) = grad_out_for(fake_out, fake);
  if (real_out.has_value()) {
    std::tie(gr_out, gr_buf) = grad_out_for(*real_out, real);
  } else {
    gr_out = at::empty({0}, fake_out.options());
  }
  const int64_t total = fake.numel() + (real.defined() ? real.numel() : 0);
  const bool single = total <= kSmall;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto device = fake_out.device().index();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, fake.scalar_type(),
                                  "adversarial_loss_backward", [&] {
    using acc_t = opmath_t<scalar_t>;
    LossArgs<scalar_t> args = loss_args<scalar_t>(plan, real, fake, single, device);
    if (!plan.use_real && !single) {
      // Blocks to write the zero gradient of an unread v_r.
      args.blocks_real = real.defined() ? blocks_for(real.numel(), Vec<scalar_t>::size, device)
                                        : 0;
    }
    if (!real.defined()) args.blocks_real = 0;
    const int grid = single ? 1 : args.blocks_real + args.blocks_fake;
    scalar_t* grp = gr_buf.defined() ? gr_buf.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gfp = gf_buf.mutable_data_ptr<scalar_t>();
    const int64_t n_grad_real = real.defined() ? real.numel() : 0;
    const acc_t* stats = nullptr;
    Tensor work;
    if (plan.relativistic && !single) {
      const int rgrid = args.blocks_real + args.blocks_fake;
      work = at::empty({4 + 2 * rgrid}, fake.options().dtype(acc));
      acc_t* s = work.mutable_data_ptr<acc_t>();
      Tensor counters = at::empty({2}, fake.options().dtype(at::kInt));
      C10_CUDA_CHECK(cudaMemsetAsync(counters.data_ptr(), 0, 2 * sizeof(int), stream));
      unsigned* counter = reinterpret_cast<unsigned*>(counters.data_ptr<int>());
      adversarial_reduce_kernel<scalar_t><<<rgrid, kBlock, 0, stream>>>(
          args, Stage::Means, s, nullptr, s + 4, counter);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      adversarial_reduce_kernel<scalar_t><<<rgrid, kBlock, 0, stream>>>(
          args, Stage::DerivMeans, s, nullptr, s + 4, counter + 1);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      stats = s;
    }
    adversarial_grad_kernel<scalar_t><<<grid, kBlock, 0, stream>>>(
        args, gl.const_data_ptr<acc_t>(), stats, grp, gfp, n_grad_real,
        grp == nullptr || aligned16(grp), aligned16(gfp));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!gf_out.is_same(gf_buf)) gf_out.copy_(gf_buf);
  if (gr_buf.defined() && !gr_out.is_same(gr_buf)) gr_out.copy_(gr_buf);
  return {gr_out, gf_out};
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) {
  m.impl("adversarial_loss", &cuda::adversarial_loss_cuda);
  m.impl("adversarial_loss_backward", &cuda::adversarial_loss_backward_cuda);
}

}  // namespace gankernels
