// CUDA kernels of adversarial_loss and adversarial_loss_backward (docs/math.md section 3).
//
// The loss of each (kind, role) is the two terms of csrc/loss_terms.h, each element's loss
// l(v) = sign * F(v - shift) + lin * v + constant times its coefficient c (the weight, 1 without
// weights), reduced per side with scale 1/N ("mean") or 1 ("sum"):
//
//     L = scale_r * sum_j c_r,j l_r(v_r,j)  +  scale_g * sum_j c_g,j l_g(v_g,j)
//
// or returned per element ("none": L_k = c_r,k l_r(v_r,k) + c_g,k l_g(v_g,k)). For relativistic
// (RaGAN) each shift is the plain mean of the OTHER array, and the gradient gains the other
// term's derivative through that mean:
//
//     dL/dx_k = gl * (scale_x c_x,k l_x'(x_k - m_y)  -  scale_y / N_x * sum_j c_y,j l_y'(y_j -
//     m_x)).
//
// For "none" the upstream gradient is per element: it is folded into the coefficients (one
// opmath array per side, made on the host only when there are weights or "none") and gl is 1.
//
// Launches (no host synchronisation anywhere: grad_loss is read from device memory in-kernel):
//   * small inputs (N_r + N_g <= kSmall, the usual critic outputs): ONE block does everything,
//     forward and backward, relativistic included (its means are block reductions first);
//   * large, every kind but relativistic: forward ONE launch (both arrays reduced together,
//     per-block partials, the last block adds them in order: deterministic, no atomics, plus a
//     memset of the completion counters); backward ONE elementwise launch;
//   * large relativistic: forward 2 launches (the means, then the loss), backward 3 (the means,
//     the derivative sums, then the elementwise pass): each needs a global result first;
//   * "none" forward: one elementwise launch per array read (after the means for relativistic).
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
  opmath_t sign, shift, constant, lin;
};

template <typename opmath_t>
DevTerm<opmath_t> dev_term(const Term& t) {
  return {t.fn, static_cast<opmath_t>(t.sign), static_cast<opmath_t>(t.shift),
          static_cast<opmath_t>(t.constant), static_cast<opmath_t>(t.lin)};
}

// l(v) of a term, or l'(v) with Deriv, for x = v - shift.
template <Fn F, bool Deriv, typename opmath_t>
__device__ __forceinline__ opmath_t term_at(opmath_t v, opmath_t shift,
                                            const DevTerm<opmath_t>& t) {
  if (Deriv) return t.sign * fn_deriv(F, v - shift) + t.lin;
  // A select, not lin * v alone: without smoothing an infinite v must not give 0 * inf = NaN.
  return t.sign * fn_value(F, v - shift) + (t.lin != opmath_t(0) ? t.lin * v : opmath_t(0)) +
         t.constant;
}

template <typename scalar_t>
struct LossArgs {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* __restrict__ real;  // nullptr when the loss does not read v_r
  const scalar_t* __restrict__ fake;
  // Per-element coefficients at the arrays' offsets, or nullptr (all ones).
  const opmath_t* __restrict__ coef_real;
  const opmath_t* __restrict__ coef_fake;
  int64_t n_real, n_fake;
  // 1 / n, from the host: a float division in the kernel would bring its out-of-line slow path.
  opmath_t inv_n_real, inv_n_fake;
  opmath_t scale_real, scale_fake;  // 1 / n for "mean", 1 for "sum" and "none"
  int blocks_real, blocks_fake;     // blocks sharing each array; a 1-block grid does both
  DevTerm<opmath_t> term_real, term_fake;
  bool use_real, relativistic;
};

// What a reduction launch sums per element, and where its result goes.
enum class Stage : int {
  Means,      // v                  -> stats[0] = m_r, stats[1] = m_g
  Loss,       // c l(v)             -> *loss
  DerivSums,  // c l'(v)            -> stats[2] = D_r, stats[3] = D_g
};

// The relativistic statistics: the two means, and the sums of the two terms' c l'.
template <typename opmath_t>
struct RelStats {
  opmath_t mean_r, mean_g, deriv_r, deriv_g;
};

// This thread's share of sum_k eval(x_k, k) over one array, which `blocks` blocks starting at
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
        for (int j = 0; j < Vec<scalar_t>::size; ++j) {
          acc += eval(static_cast<opmath_t>(p.v[j]), k + j);
        }
      },
      [&](int64_t k) { acc += eval(static_cast<opmath_t>(x[k]), k); });
  return acc;
}

// This thread's share of the stage's sum over one array: v (Means), c l(v) (Loss) or c l'(v)
// (DerivSums), with F chosen once, outside the loop; c read only when there are coefficients.
template <Stage S, typename scalar_t>
__device__ __forceinline__ at::opmath_type<scalar_t> stage_share(
    const scalar_t* x, const at::opmath_type<scalar_t>* __restrict__ coef, int64_t n, int first,
    int blocks, const DevTerm<at::opmath_type<scalar_t>>& term, at::opmath_type<scalar_t> shift) {
  using opmath_t = at::opmath_type<scalar_t>;
  if constexpr (S == Stage::Means) {
    return share_sum<4>(x, n, first, blocks, [](opmath_t v, int64_t) { return v; });
  } else {
    constexpr bool kDeriv = S == Stage::DerivSums;
    return with_fn(term.fn, [&](auto tag) {
      constexpr Fn F = decltype(tag)::value;
      // Two packs in flight where l is evaluated: at four, some instantiations spilled.
      // The relativistic derivative sums (DerivSums) run inside the gradient kernel too, whose
      // float32 instantiation spilled with two.
      if (coef == nullptr) {
        return share_sum<kDeriv ? 1 : 2>(x, n, first, blocks, [&](opmath_t v, int64_t) {
          return term_at<F, kDeriv>(v, shift, term);
        });
      }
      // Weighted: one pack in flight, each value's coefficient read beside it (two spilled
      // the half types' 64 registers).
      return share_sum<1>(x, n, first, blocks, [&](opmath_t v, int64_t k) {
        return coef[k] * term_at<F, kDeriv>(v, shift, term);
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
  sum_r = block_sum<kBlock>(stage_share<S>(a.use_real ? a.real : nullptr, a.coef_real, a.n_real, 0,
                                           a.blocks_real, a.term_real, shift_r));
  sum_g = block_sum<kBlock>(stage_share<S>(a.fake, a.coef_fake, a.n_fake, first_fake, a.blocks_fake,
                                           a.term_fake, shift_g));
}

// The relativistic statistics of a single-block launch, computed in-block: the means, and with
// `derivs` the sums of c l'.
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
    block_stage_sums<Stage::DerivSums>(a, a.term_real.shift + st.mean_g,
                                       a.term_fake.shift + st.mean_r, sr, sg);
    st.deriv_r = sr;
    st.deriv_g = sg;
  }
  return st;
}

// One reduction stage over both arrays. partials: [2 * gridDim.x]; stats: [4] (read for the
// shifts of a relativistic Loss / DerivSums stage, written by Means / DerivSums); with a
// 1-block grid and stats == nullptr, a relativistic Loss stage computes its means in-block.
template <typename scalar_t, Stage S>
__global__ void __launch_bounds__(kBlock, 3)
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
  if constexpr (S == Stage::Loss) {
    *loss = sg * a.scale_fake + (a.use_real ? sr * a.scale_real : opmath_t(0));
  } else if constexpr (S == Stage::Means) {
    stats[0] = a.use_real ? sr * a.inv_n_real : opmath_t(0);
    stats[1] = sg * a.inv_n_fake;
  } else {
    stats[2] = sr;
    stats[3] = sg;
  }
}

// out_k = gl * (scale * c_k * l'(x_k) + add) over this thread's share of one array, with F
// chosen once, outside the loop.
template <typename scalar_t>
__device__ __forceinline__ void grad_share(
    const scalar_t* __restrict__ x, const at::opmath_type<scalar_t>* __restrict__ coef,
    scalar_t* __restrict__ out, int64_t n, int64_t lane, int64_t team,
    const DevTerm<at::opmath_type<scalar_t>>& term, at::opmath_type<scalar_t> gl,
    at::opmath_type<scalar_t> scale, at::opmath_type<scalar_t> shift,
    at::opmath_type<scalar_t> add) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const auto run = [&](auto&& grad) {
    for_range<V>(
        0, n, lane, team, common_phase(phase_of(x), phase_of(out)),
        [&](int64_t k) {
          const Pack<scalar_t> p = load_pack(x + k);
          Pack<scalar_t> y;
#pragma unroll
          for (int j = 0; j < V; ++j) y.v[j] = grad(static_cast<opmath_t>(p.v[j]), k + j);
          store_pack(out + k, y);
        },
        [&](int64_t k) { out[k] = grad(static_cast<opmath_t>(x[k]), k); });
  };
  with_fn(term.fn, [&](auto tag) {
    constexpr Fn F = decltype(tag)::value;
    const opmath_t s = gl * scale, ad = gl * add;
    if (coef == nullptr) {
      run([&](opmath_t v, int64_t) {
        return static_cast<scalar_t>(s * term_at<F, true>(v, shift, term) + ad);
      });
    } else {
      run([&](opmath_t v, int64_t k) {
        return static_cast<scalar_t>(s * coef[k] * term_at<F, true>(v, shift, term) + ad);
      });
    }
  });
}

// grad_x = gl * (scale_x * c_x * l_x'(x - shift_x) + add_x), elementwise over both arrays;
// grad_real is all zeros when the loss does not read v_r. gl is *grad_loss, or 1 without it
// (reduction "none", whose upstream gradient is in the coefficients). With a 1-block grid and
// stats == nullptr, a relativistic loss computes its statistics in-block first.
// Four blocks a multiprocessor (64 registers): left to itself ptxas picked 40 and spilled.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock, 4)
    adversarial_grad_kernel(LossArgs<scalar_t> a,
                            const at::opmath_type<scalar_t>* __restrict__ grad_loss,
                            const at::opmath_type<scalar_t>* __restrict__ stats,
                            scalar_t* __restrict__ grad_real, scalar_t* __restrict__ grad_fake,
                            int64_t n_grad_real) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const opmath_t gl = grad_loss != nullptr ? *grad_loss : opmath_t(1);
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
    // d/dx_k of scale_y * sum_j c_y,j l_y(y_j - m_x) = -scale_y * D_y / N_x.
    add_r = -a.scale_fake * st.deriv_g * a.inv_n_real;
    add_g = -a.scale_real * st.deriv_r * a.inv_n_fake;
  }

  // v_r's share: blocks [0, blocks_real).
  if (grad_real != nullptr && static_cast<int>(blockIdx.x) < a.blocks_real) {
    const int64_t lane = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    const int64_t team = static_cast<int64_t>(a.blocks_real) * kBlock;
    if (a.use_real) {
      grad_share(a.real, a.coef_real, grad_real, a.n_real, lane, team, a.term_real, gl,
                 a.scale_real, shift_r, add_r);
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
    grad_share(a.fake, a.coef_fake, grad_fake, a.n_fake,
               static_cast<int64_t>(b) * kBlock + threadIdx.x,
               static_cast<int64_t>(a.blocks_fake) * kBlock, a.term_fake, gl, a.scale_fake, shift_g,
               add_g);
  }
}

// Reduction "none": out_k = c_k * l(x_k) (+ out_k when `accumulate`), over one array, with the
// relativistic shift's mean read from stats[mean_at] when stats is given.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    adversarial_terms_kernel(const scalar_t* __restrict__ x,
                             const at::opmath_type<scalar_t>* __restrict__ coef,
                             at::opmath_type<scalar_t>* __restrict__ out, int64_t n,
                             DevTerm<at::opmath_type<scalar_t>> term,
                             const at::opmath_type<scalar_t>* __restrict__ stats, int mean_at,
                             bool accumulate) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const opmath_t shift = term.shift + (stats != nullptr ? stats[mean_at] : opmath_t(0));
  with_fn(term.fn, [&](auto tag) {
    constexpr Fn F = decltype(tag)::value;
    const auto put = [&](opmath_t v, int64_t k) {
      const opmath_t l = term_at<F, false>(v, shift, term);
      const opmath_t value = coef != nullptr ? coef[k] * l : l;
      out[k] = accumulate ? out[k] + value : value;
    };
    for_range<V>(
        0, n, static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x,
        static_cast<int64_t>(gridDim.x) * kBlock, phase_of(x),
        [&](int64_t k) {
          const Pack<scalar_t> p = load_pack(x + k);
#pragma unroll
          for (int j = 0; j < V; ++j) put(static_cast<opmath_t>(p.v[j]), k + j);
        },
        [&](int64_t k) { put(static_cast<opmath_t>(x[k]), k); });
  });
}

// ---- host side ----------------------------------------------------------------------------------

struct Checked {
  Plan plan;
  Reduction reduction;
};

Checked check_and_plan(const std::optional<Tensor>& real_out, const Tensor& fake_out,
                       c10::string_view kind, c10::string_view role, double a, double b, double c,
                       bool nonsaturating, double label_smoothing, double margin,
                       const std::optional<Tensor>& real_weights,
                       const std::optional<Tensor>& fake_weights, c10::string_view reduction) {
  const LossChoice choice = check_adversarial_loss(real_out, fake_out, kind, role, label_smoothing,
                                                   margin, real_weights, fake_weights, reduction);
  return {make_plan(choice.kind, choice.critic, a, b, c, nonsaturating, label_smoothing, margin),
          choice.reduction};
}

// Blocks for one array of a multi-block launch: about four packs per thread, at most half the
// resident blocks each.
int blocks_for(int64_t n, int vec, int64_t resident) {
  if (n == 0) return 0;
  const int64_t per_block = static_cast<int64_t>(kBlock) * vec * 4;
  return static_cast<int>(std::max<int64_t>(1, std::min(ceil_div(n, per_block), resident / 2)));
}

// Real and fake dense, in one layout for "none" (where they are added elementwise).
std::pair<Tensor, Tensor> inputs_for(bool read_real, Reduction reduction,
                                     const std::optional<Tensor>& real_out,
                                     const Tensor& fake_out) {
  Tensor fake = dense(fake_out);
  Tensor real;
  if (read_real) {
    real = reduction == Reduction::None ? in_layout_of(*real_out, fake) : dense(*real_out);
  }
  return {real, fake};
}

double scale_of(Reduction r, int64_t n) {
  return r == Reduction::Mean ? 1.0 / static_cast<double>(n) : 1.0;
}

template <typename scalar_t>
LossArgs<scalar_t> loss_args(const Plan& plan, Reduction reduction, const Tensor& real,
                             const Tensor& fake, const Tensor& coef_real, const Tensor& coef_fake,
                             bool single_block, int64_t resident) {
  using opmath_t = at::opmath_type<scalar_t>;
  LossArgs<scalar_t> a{};
  a.use_real = plan.use_real;
  a.relativistic = plan.relativistic;
  a.term_real = dev_term<opmath_t>(plan.real);
  a.term_fake = dev_term<opmath_t>(plan.fake);
  a.fake = fake.const_data_ptr<scalar_t>();
  a.coef_fake = coef_fake.defined() ? coef_fake.const_data_ptr<opmath_t>() : nullptr;
  a.n_fake = fake.numel();
  a.inv_n_fake = static_cast<opmath_t>(1.0 / static_cast<double>(a.n_fake));
  a.scale_fake = static_cast<opmath_t>(scale_of(reduction, a.n_fake));
  if (real.defined()) {
    a.real = real.const_data_ptr<scalar_t>();
    a.coef_real = coef_real.defined() ? coef_real.const_data_ptr<opmath_t>() : nullptr;
    a.n_real = real.numel();
    a.inv_n_real = static_cast<opmath_t>(1.0 / static_cast<double>(a.n_real));
    a.scale_real = static_cast<opmath_t>(scale_of(reduction, a.n_real));
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

// The relativistic means into stats[0..1] (one Means launch over `grid` blocks).
template <typename scalar_t>
void launch_means(const LossArgs<scalar_t>& args, int grid, at::opmath_type<scalar_t>* stats,
                  unsigned* counter, cudaStream_t stream) {
  adversarial_reduce_kernel<scalar_t, Stage::Means>
      <<<grid, kBlock, 0, stream>>>(args, stats, nullptr, stats + 4, counter);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Device scratch for the reductions: [4] statistics then [2 * grid] partials, and 2 zeroed
// completion counters (one memset).
struct Scratch {
  Tensor work, counters;
  template <typename opmath_t>
  opmath_t* stats() {
    return work.mutable_data_ptr<opmath_t>();
  }
  unsigned* counter() { return reinterpret_cast<unsigned*>(counters.data_ptr<int>()); }
};

Scratch scratch_for(int grid, const Tensor& like, at::ScalarType opmath, cudaStream_t stream) {
  Scratch s{at::empty({4 + 2 * grid}, like.options().dtype(opmath)),
            at::empty({2}, like.options().dtype(at::kInt))};
  C10_CUDA_CHECK(cudaMemsetAsync(s.counters.data_ptr(), 0, 2 * sizeof(int), stream));
  return s;
}

Tensor adversarial_loss_cuda(const std::optional<Tensor>& real_out, const Tensor& fake_out,
                             c10::string_view kind, c10::string_view role, double a, double b,
                             double c, bool nonsaturating, double label_smoothing, double margin,
                             const std::optional<Tensor>& real_weights,
                             const std::optional<Tensor>& fake_weights,
                             c10::string_view reduction) {
  // Named locals rather than structured bindings: the dispatch lambdas below capture them.
  const Checked checked =
      check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating, label_smoothing,
                     margin, real_weights, fake_weights, reduction);
  const Plan& plan = checked.plan;
  const Reduction red = checked.reduction;
  const c10::cuda::CUDAGuard guard(fake_out.device());
  Tensor real, fake;
  std::tie(real, fake) = inputs_for(plan.use_real, red, real_out, fake_out);
  const auto opmath = opmath_scalar_type(fake_out.scalar_type());
  const Tensor coef_fake = loss_coefficients(fake_weights, Tensor(), fake, opmath);
  const Tensor coef_real =
      plan.use_real ? loss_coefficients(real_weights, Tensor(), real, opmath) : Tensor();
  const int64_t total = fake.numel() + (real.defined() ? real.numel() : 0);
  const bool single = total <= kSmall;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto device = fake_out.device().index();

  if (red == Reduction::None) {
    Tensor out = at::empty_like(fake_out, fake_out.options().dtype(opmath));
    Tensor buffer = same_layout(out, fake) ? out : at::empty_like(fake, out.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss", [&] {
          using opmath_t = at::opmath_type<scalar_t>;
          const int64_t resident =
              resident_blocks(adversarial_terms_kernel<scalar_t>, kBlock, device);
          const LossArgs<scalar_t> args =
              loss_args<scalar_t>(plan, red, real, fake, coef_real, coef_fake, single, resident);
          const opmath_t* stats = nullptr;
          Scratch scratch;
          if (plan.relativistic) {
            const int grid = single ? 1 : args.blocks_real + args.blocks_fake;
            scratch = scratch_for(grid, fake, opmath, stream);
            launch_means(args, grid, scratch.stats<opmath_t>(), scratch.counter(), stream);
            stats = scratch.stats<opmath_t>();
          }
          opmath_t* o = buffer.mutable_data_ptr<opmath_t>();
          constexpr int V = Vec<scalar_t>::size;
          const auto blocks = [&](int64_t n) {
            return std::max(1, blocks_for(n, V, 2 * resident));
          };
          // The fake term first (it writes), the real term added to it; a relativistic term's
          // shift is the other array's mean: m_r = stats[0] for v_g, m_g = stats[1] for v_r.
          adversarial_terms_kernel<scalar_t><<<blocks(args.n_fake), kBlock, 0, stream>>>(
              args.fake, args.coef_fake, o, args.n_fake, args.term_fake, stats, 0, false);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          if (plan.use_real) {
            adversarial_terms_kernel<scalar_t><<<blocks(args.n_real), kBlock, 0, stream>>>(
                args.real, args.coef_real, o, args.n_real, args.term_real, stats, 1, true);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          }
        });
    if (!buffer.is_same(out)) out.copy_(buffer);
    return out;
  }

  Tensor loss = at::empty({}, fake_out.options().dtype(opmath));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss", [&] {
        using opmath_t = at::opmath_type<scalar_t>;
        const int64_t resident =
            resident_blocks(adversarial_reduce_kernel<scalar_t, Stage::Loss>, kBlock, device);
        const LossArgs<scalar_t> args =
            loss_args<scalar_t>(plan, red, real, fake, coef_real, coef_fake, single, resident);
        if (single) {
          adversarial_reduce_kernel<scalar_t, Stage::Loss><<<1, kBlock, 0, stream>>>(
              args, nullptr, loss.mutable_data_ptr<opmath_t>(), nullptr, nullptr);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          return;
        }
        const int grid = args.blocks_real + args.blocks_fake;
        Scratch scratch = scratch_for(grid, fake, opmath, stream);
        opmath_t* stats = scratch.stats<opmath_t>();
        unsigned* counter = scratch.counter();
        if (plan.relativistic) {
          launch_means(args, grid, stats, counter, stream);
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

std::tuple<Tensor, Tensor> adversarial_loss_backward_cuda(
    const Tensor& grad_loss, const std::optional<Tensor>& real_out, const Tensor& fake_out,
    c10::string_view kind, c10::string_view role, double a, double b, double c, bool nonsaturating,
    double label_smoothing, double margin, const std::optional<Tensor>& real_weights,
    const std::optional<Tensor>& fake_weights, c10::string_view reduction) {
  // Named locals rather than structured bindings: the dispatch lambdas below capture them.
  const Checked checked =
      check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating, label_smoothing,
                     margin, real_weights, fake_weights, reduction);
  const Plan& plan = checked.plan;
  const Reduction red = checked.reduction;
  check_adversarial_loss_grad(grad_loss, fake_out, red);

  const c10::cuda::CUDAGuard guard(fake_out.device());
  const auto opmath = opmath_scalar_type(fake_out.scalar_type());
  const bool none = red == Reduction::None;
  // A scalar grad_loss stays on the device (the kernel reads it; a no-op on the autograd path);
  // a per-element one ("none") goes into the coefficients.
  const Tensor gl = none ? Tensor() : grad_loss.to(opmath);
  const Tensor per_element = none ? grad_loss : Tensor();
  // v_r is read when the loss uses it; otherwise only its zero gradient is written.
  Tensor real, fake;
  std::tie(real, fake) = inputs_for(plan.use_real, red, real_out, fake_out);
  if (!plan.use_real && real_out.has_value()) real = dense(*real_out);
  const Tensor coef_fake = loss_coefficients(fake_weights, per_element, fake, opmath);
  const Tensor coef_real =
      plan.use_real ? loss_coefficients(real_weights, per_element, real, opmath) : Tensor();
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
        LossArgs<scalar_t> args =
            loss_args<scalar_t>(plan, red, real, fake, coef_real, coef_fake, single, resident);
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
        Scratch scratch;
        if (plan.relativistic && !single) {
          const int rgrid = args.blocks_real + args.blocks_fake;
          scratch = scratch_for(rgrid, fake, opmath, stream);
          opmath_t* s = scratch.stats<opmath_t>();
          launch_means(args, rgrid, s, scratch.counter(), stream);
          adversarial_reduce_kernel<scalar_t, Stage::DerivSums>
              <<<rgrid, kBlock, 0, stream>>>(args, s, nullptr, s + 4, scratch.counter() + 1);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          stats = s;
        }
        adversarial_grad_kernel<scalar_t><<<grid, kBlock, 0, stream>>>(
            args, gl.defined() ? gl.const_data_ptr<opmath_t>() : nullptr, stats, grp, gfp,
            n_grad_real);
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
