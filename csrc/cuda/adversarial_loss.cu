// CUDA kernels of adversarial_loss and adversarial_loss_backward (docs/math.md section 3).
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

template <typename opmath_t>
struct DevTerm {
  Fn fn;
  opmath_t sign, shift, constant;
};

template <typename opmath_t>
DevTerm<opmath_t> dev_term(const Term& t) {
  return {t.fn, static_cast<opmath_t>(t.sign), static_cast<opmath_t>(t.shift),
          static_cast<opmath_t>(t.constant)};
}

template <typename scalar_t>
struct LossArgs {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* __restrict__ real;  // nullptr when the loss does not read v_r
  const scalar_t* __restrict__ fake;
  int64_t n_real, n_fake;
  // 1 / n, from the host: a float division in the kernel would bring its out-of-line slow path.
  at::opmath_type<scalar_t> inv_n_real, inv_n_fake;
  int blocks_real, blocks_fake;  // blocks sharing each array; a 1-block grid does both
  DevTerm<opmath_t> term_real, term_fake;
  bool use_real, relativistic;
};

// What a reduction launch sums per element, and where its result goes.
enum class Stage : int {
  Means,       // v                       -> stats[0] = m_r, stats[1] = m_g
  Loss,        // F(v - shift)            -> *loss
  DerivMeans,  // F'(v - shift)           -> stats[2] = D_r, stats[3] = D_g
};

// The relativistic statistics: the two means, and the means of the two derivatives.
template <typename opmath_t>
struct RelStats {
  opmath_t mean_r, mean_g, deriv_r, deriv_g;
};

// This thread's share of sum_k eval(x_k) over one array, which `blocks` blocks starting at
// `first` walk together (zero for the other blocks), `Unroll` packs in flight.
template <int Unroll, typename scalar_t, typename Eval>
__device__ __forceinline__ at::opmath_type<scalar_t> share_sum(const scalar_t* __restrict__ x,
                                                               int64_t n, int first, int blocks,
                                                               Eval&& eval) {
  using opmath_t = at::opmath_type<scalar_t>;
  opmath_t acc = 0;
  const int b = static_cast<int>(blockIdx.x) - first;
  if (x == nullptr || b < 0 || b >= blocks) return acc;
  for_range<Vec<scalar_t>::size, Unroll>(
      0, n, static_cast<int64_t>(b) * kBlock + threadIdx.x, static_cast<int64_t>(blocks) * kBlock,
      phase_of(x),
      [&](int64_t k) {
        const Pack<scalar_t> p = load_pack(x + k);
#pragma unroll
        for (int j = 0; j < Vec<scalar_t>::size; ++j) acc += eval(static_cast<opmath_t>(p.v[j]));
      },
      [&](int64_t k) { acc += eval(static_cast<opmath_t>(x[k])); });
  return acc;
}

// This thread's share of the stage's sum over one array: v (Means), F(v - shift) (Loss) or
// F'(v - shift) (DerivMeans), with F chosen once, outside the loop.
template <Stage S, typename scalar_t>
__device__ __forceinline__ at::opmath_type<scalar_t> stage_share(const scalar_t* x, int64_t n,
                                                                 int first, int blocks, Fn fn,
                                                                 at::opmath_type<scalar_t> shift) {
  using opmath_t = at::opmath_type<scalar_t>;
  if constexpr (S == Stage::Means) {
    return share_sum<4>(x, n, first, blocks, [](opmath_t v) { return v; });
  } else {
    // Two packs in flight where F is evaluated: at four, some instantiations spilled.
    return with_fn(fn, [&](auto tag) {
      constexpr Fn F = decltype(tag)::value;
      return share_sum<2>(x, n, first, blocks, [&](opmath_t v) {
        return S == Stage::Loss ? fn_value(F, v - shift) : fn_deriv(F, v - shift);
      });
    });
  }
}

// The stage's sums over v_r and v_g, each block-reduced (valid in every thread).
template <Stage S, typename scalar_t>
__device__ __forceinline__ void block_stage_sums(const LossArgs<scalar_t>& a,
                                                 at::opmath_type<scalar_t> shift_r,
                                                 at::opmath_type<scalar_t> shift_g,
                                                 at::opmath_type<scalar_t>& sum_r,
                                                 at::opmath_type<scalar_t>& sum_g) {
  const int first_fake = static_cast<int>(gridDim.x) - a.blocks_fake;
  sum_r = block_sum<kBlock>(stage_share<S>(a.use_real ? a.real : nullptr, a.n_real, 0,
                                           a.blocks_real, a.term_real.fn, shift_r));
  sum_g = block_sum<kBlock>(
      stage_share<S>(a.fake, a.n_fake, first_fake, a.blocks_fake, a.term_fake.fn, shift_g));
}

// The relativistic statistics of a single-block launch, computed in-block: the means, and with
// `derivs` the derivative means.
template <typename scalar_t>
__device__ __forceinline__ RelStats<at::opmath_type<scalar_t>> block_relativistic_stats(
    const LossArgs<scalar_t>& a, bool derivs) {
  using opmath_t = at::opmath_type<scalar_t>;
  RelStats<opmath_t> st{};
  opmath_t sr, sg;
  block_stage_sums<Stage::Means>(a, opmath_t(0), opmath_t(0), sr, sg);
  st.mean_r = sr * a.inv_n_real;
  st.mean_g = sg * a.inv_n_fake;
  if (derivs) {
    block_stage_sums<Stage::DerivMeans>(a, a.term_real.shift + st.mean_g,
                                        a.term_fake.shift + st.mean_r, sr, sg);
    st.deriv_r = sr * a.inv_n_real;
    st.deriv_g = sg * a.inv_n_fake;
  }
  return st;
}

// One reduction stage over both arrays. partials: [2 * gridDim.x]; stats: [4] (read for the
// shifts of a relativistic Loss / DerivMeans stage, written by Means / DerivMeans); with a
// 1-block grid and stats == nullptr, a relativistic Loss stage computes its means in-block.
template <typename scalar_t, Stage S>
__global__ void __launch_bounds__(kBlock, 4)
    adversarial_reduce_kernel(LossArgs<scalar_t> a, at::opmath_type<scalar_t>* stats,
                              at::opmath_type<scalar_t>* __restrict__ loss,
                              at::opmath_type<scalar_t>* __restrict__ partials, unsigned* counter) {
  using opmath_t = at::opmath_type<scalar_t>;
  opmath_t shift_r = a.term_real.shift, shift_g = a.term_fake.shift;
  if (S != Stage::Means && a.relativistic) {
    opmath_t mean_r, mean_g;
    if (stats == nullptr) {  // single block: the means first, in-block
      const RelStats<opmath_t> st = block_relativistic_stats(a, /*derivs=*/false);
      mean_r = st.mean_r;
      mean_g = st.mean_g;
    } else {
      mean_r = stats[0];
      mean_g = stats[1];
    }
    shift_r += mean_g;
    shift_g += mean_r;
  }
  opmath_t sr, sg;
  block_stage_sums<S>(a, shift_r, shift_g, sr, sg);
  if (gridDim.x > 1) {
    if (threadIdx.x == 0) {
      partials[2 * blockIdx.x] = sr;
      partials[2 * blockIdx.x + 1] = sg;
    }
    if (!last_block(counter)) return;
    opmath_t r = 0, g = 0;
    for (int64_t b = threadIdx.x; b < gridDim.x; b += kBlock) {
      r += __ldcg(partials + 2 * b);
      g += __ldcg(partials + 2 * b + 1);
    }
    sr = block_sum<kBlock>(r);
    sg = block_sum<kBlock>(g);
  }
  if (threadIdx.x != 0) return;
  const opmath_t mean_r = a.use_real ? sr * a.inv_n_real : opmath_t(0);
  const opmath_t mean_g = sg * a.inv_n_fake;
  if constexpr (S == Stage::Loss) {
    opmath_t value = a.term_fake.sign * mean_g + a.term_fake.constant;
    if (a.use_real) value += a.term_real.sign * mean_r + a.term_real.constant;
    *loss = value;
  } else {
    constexpr int at = S == Stage::Means ? 0 : 2;
    stats[at] = mean_r;
    stats[at + 1] = mean_g;
  }
}

// out_k = gl * (scale * F'(x_k - shift) + add) over this thread's share of one array, with F
// chosen once, outside the loop.
template <typename scalar_t>
__device__ __forceinline__ void grad_share(const scalar_t* __restrict__ x,
                                           scalar_t* __restrict__ out, int64_t n, int64_t lane,
                                           int64_t team, Fn fn, at::opmath_type<scalar_t> gl,
                                           at::opmath_type<scalar_t> scale,
                                           at::opmath_type<scalar_t> shift,
                                           at::opmath_type<scalar_t> add) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  with_fn(fn, [&](auto tag) {
    constexpr Fn F = decltype(tag)::value;
    const auto grad = [&](opmath_t v) {
      return static_cast<scalar_t>(gl * (scale * fn_deriv(F, v - shift) + add));
    };
    for_range<V>(
        0, n, lane, team, common_phase(phase_of(x), phase_of(out)),
        [&](int64_t k) {
          const Pack<scalar_t> p = load_pack(x + k);
          Pack<scalar_t> y;
#pragma unroll
          for (int j = 0; j < V; ++j) y.v[j] = grad(static_cast<opmath_t>(p.v[j]));
          store_pack(out + k, y);
        },
        [&](int64_t k) { out[k] = grad(static_cast<opmath_t>(x[k])); });
  });
}

// grad_x = grad_loss * (sign_x / N_x * F_x'(x - shift_x) + add_x), elementwise over both
// arrays; grad_real is all zeros when the loss does not read v_r. With a 1-block grid and
// stats == nullptr, a relativistic loss computes its statistics in-block first.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    adversarial_grad_kernel(LossArgs<scalar_t> a,
                            const at::opmath_type<scalar_t>* __restrict__ grad_loss,
                            const at::opmath_type<scalar_t>* __restrict__ stats,
                            scalar_t* __restrict__ grad_real, scalar_t* __restrict__ grad_fake,
                            int64_t n_grad_real) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const opmath_t gl = *grad_loss;
  opmath_t shift_r = a.term_real.shift, shift_g = a.term_fake.shift;
  opmath_t add_r = 0, add_g = 0;
  if (a.relativistic) {
    RelStats<opmath_t> st;
    if (stats == nullptr) {
      st = block_relativistic_stats(a, /*derivs=*/true);
    } else {
      st = {stats[0], stats[1], stats[2], stats[3]};
    }
    shift_r += st.mean_g;
    shift_g += st.mean_r;
    // d/dx_k of sign_y * mean_j F_y(y_j - m_x) = -sign_y * mean_j F_y'(y_j - m_x) / N_x.
    add_r = -a.term_fake.sign * st.deriv_g * a.inv_n_real;
    add_g = -a.term_real.sign * st.deriv_r * a.inv_n_fake;
  }

  // v_r's share: blocks [0, blocks_real).
  if (grad_real != nullptr && static_cast<int>(blockIdx.x) < a.blocks_real) {
    const int64_t lane = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    const int64_t team = static_cast<int64_t>(a.blocks_real) * kBlock;
    if (a.use_real) {
      grad_share(a.real, grad_real, a.n_real, lane, team, a.term_real.fn, gl,
                 a.term_real.sign * a.inv_n_real, shift_r, add_r);
    } else {
      for_range<V>(
          0, n_grad_real, lane, team, phase_of(grad_real),
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
    grad_share(a.fake, grad_fake, a.n_fake, static_cast<int64_t>(b) * kBlock + threadIdx.x,
               static_cast<int64_t>(a.blocks_fake) * kBlock, a.term_fake.fn, gl,
               a.term_fake.sign * a.inv_n_fake, shift_g, add_g);
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
int blocks_for(int64_t n, int vec, int64_t resident) {
  if (n == 0) return 0;
  const int64_t per_block = static_cast<int64_t>(kBlock) * vec * 4;
  return static_cast<int>(std::max<int64_t>(1, std::min(ceil_div(n, per_block), resident / 2)));
}

template <typename scalar_t>
LossArgs<scalar_t> loss_args(const Plan& plan, const Tensor& real, const Tensor& fake,
                             bool single_block, int64_t resident) {
  using opmath_t = at::opmath_type<scalar_t>;
  LossArgs<scalar_t> a{};
  a.use_real = plan.use_real;
  a.relativistic = plan.relativistic;
  a.term_real = dev_term<opmath_t>(plan.real);
  a.term_fake = dev_term<opmath_t>(plan.fake);
  a.fake = fake.const_data_ptr<scalar_t>();
  a.n_fake = fake.numel();
  a.inv_n_fake = static_cast<opmath_t>(1.0 / static_cast<double>(a.n_fake));
  if (real.defined()) {
    a.real = real.const_data_ptr<scalar_t>();
    a.n_real = real.numel();
    a.inv_n_real = static_cast<opmath_t>(1.0 / static_cast<double>(a.n_real));
  }
  constexpr int V = Vec<scalar_t>::size;
  if (single_block) {
    a.blocks_real = 1;
    a.blocks_fake = 1;
  } else {
    a.blocks_real = blocks_for(a.n_real, V, resident);
    a.blocks_fake = blocks_for(a.n_fake, V, resident);
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
  const auto opmath = opmath_scalar_type(fake_out.scalar_type());
  Tensor loss = at::empty({}, fake_out.options().dtype(opmath));
  const int64_t total = fake.numel() + (real.defined() ? real.numel() : 0);
  const bool single = total <= kSmall;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto device = fake_out.device().index();

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const int64_t resident =
            resident_blocks(adversarial_reduce_kernel<scalar_t, Stage::Loss>, kBlock, device);
        const LossArgs<scalar_t> args = loss_args<scalar_t>(plan, real, fake, single, resident);
        if (single) {
          adversarial_reduce_kernel<scalar_t, Stage::Loss><<<1, kBlock, 0, stream>>>(
              args, nullptr, loss.mutable_data_ptr<opmath_t>(), nullptr, nullptr);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          return;
        }
        const int grid = args.blocks_real + args.blocks_fake;
        // One buffer: [4] statistics, then [2 * grid] partials; 2 counters in one memset.
        Tensor work = at::empty({4 + 2 * grid}, fake.options().dtype(opmath));
        opmath_t* stats = work.mutable_data_ptr<opmath_t>();
        Tensor counters = at::empty({2}, fake.options().dtype(at::kInt));
        C10_CUDA_CHECK(cudaMemsetAsync(counters.data_ptr(), 0, 2 * sizeof(int), stream));
        unsigned* counter = reinterpret_cast<unsigned*>(counters.data_ptr<int>());
        if (plan.relativistic) {
          adversarial_reduce_kernel<scalar_t, Stage::Means>
              <<<grid, kBlock, 0, stream>>>(args, stats, nullptr, stats + 4, counter);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          ++counter;
        }
        adversarial_reduce_kernel<scalar_t, Stage::Loss><<<grid, kBlock, 0, stream>>>(
            args, stats, loss.mutable_data_ptr<opmath_t>(), stats + 4, counter);
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

std::tuple<Tensor, Tensor> adversarial_loss_backward_cuda(const Tensor& grad_loss,
                                                          const std::optional<Tensor>& real_out,
                                                          const Tensor& fake_out,
                                                          c10::string_view kind,
                                                          c10::string_view role, double a, double b,
                                                          double c, bool nonsaturating) {
  const Plan plan = check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating);
  check_adversarial_loss_grad(grad_loss, fake_out);

  const c10::cuda::CUDAGuard guard(fake_out.device());
  const auto opmath = opmath_scalar_type(fake_out.scalar_type());
  // Stays on the device: the kernel reads it. A no-op (no launch) on the autograd path.
  const Tensor gl = grad_loss.to(opmath);
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

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss_backward", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const int64_t resident = resident_blocks(adversarial_grad_kernel<scalar_t>, kBlock, device);
        LossArgs<scalar_t> args = loss_args<scalar_t>(plan, real, fake, single, resident);
        if (!plan.use_real && !single) {
          // Blocks to write the zero gradient of an unread v_r.
          args.blocks_real =
              real.defined() ? blocks_for(real.numel(), Vec<scalar_t>::size, resident) : 0;
        }
        if (!real.defined()) args.blocks_real = 0;
        const int grid = single ? 1 : args.blocks_real + args.blocks_fake;
        scalar_t* grp = gr_buf.defined() ? gr_buf.mutable_data_ptr<scalar_t>() : nullptr;
        scalar_t* gfp = gf_buf.mutable_data_ptr<scalar_t>();
        const int64_t n_grad_real = real.defined() ? real.numel() : 0;
        const opmath_t* stats = nullptr;
        Tensor work;
        if (plan.relativistic && !single) {
          const int rgrid = args.blocks_real + args.blocks_fake;
          work = at::empty({4 + 2 * rgrid}, fake.options().dtype(opmath));
          opmath_t* s = work.mutable_data_ptr<opmath_t>();
          Tensor counters = at::empty({2}, fake.options().dtype(at::kInt));
          C10_CUDA_CHECK(cudaMemsetAsync(counters.data_ptr(), 0, 2 * sizeof(int), stream));
          unsigned* counter = reinterpret_cast<unsigned*>(counters.data_ptr<int>());
          adversarial_reduce_kernel<scalar_t, Stage::Means>
              <<<rgrid, kBlock, 0, stream>>>(args, s, nullptr, s + 4, counter);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          adversarial_reduce_kernel<scalar_t, Stage::DerivMeans>
              <<<rgrid, kBlock, 0, stream>>>(args, s, nullptr, s + 4, counter + 1);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          stats = s;
        }
        adversarial_grad_kernel<scalar_t><<<grid, kBlock, 0, stream>>>(
            args, gl.const_data_ptr<opmath_t>(), stats, grp, gfp, n_grad_real);
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
