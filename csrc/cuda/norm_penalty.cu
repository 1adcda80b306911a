// CUDA kernels of norm_penalty and norm_penalty_backward (docs/math.md section 2).
//
//   forward   n_i = ||inv_scale * g_i||_2,  P = weight / B * sum_i phi(n_i - target)
//             phi(d) = d^2, or max(d, 0)^2 when one_sided
//   backward  dL/dg_ij = c_i * inv_scale^2 * g_ij / n_i,
//             c_i = grad_loss * weight / B * phi'(n_i - target) + grad_norms_i,
//             0 on a zero row; for target == 0, phi'(n) / n is exactly 2 (no division).
//
// Forward: ONE kernel launch (plus a memset of the completion counters). Per-sample sums of
// squares either by a team of lanes per sample (small or many samples) or by P blocks per
// sample (few large ones; launch_plan.h plan_samples). In team mode the last block to finish
// adds the per-block sums of phi; in split mode the block that finishes a sample's last chunk
// turns its partials into the norm, and the block that finishes the last sample adds the loss.
// Every sum is taken in a fixed order: the result is bitwise reproducible on a given GPU, and
// no float atomics are used.
// Backward: ONE elementwise launch; grad_loss is read from device memory inside the kernel
// (never .item(): no host synchronisation). Sums accumulate in float32 for half types (a half
// square overflows past |g| ~ 256) and in float64 for float64.
//
// Layouts: any batch-major dense layout (contiguous, channels_last) is read and written in
// place; anything else goes through one contiguous copy (layout.h batch_major_dense).
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "checks.h"
#include "utils.cuh"

namespace gankernels {
namespace cuda {
namespace {

using at::Tensor;

// ---- forward ------------------------------------------------------------------------------------

template <typename opmath_t>
struct PenaltyArgs {
  opmath_t inv_scale;
  opmath_t target;
  opmath_t weight_over_b;  // weight / B, from the host: a division here would be a slow-path call
  bool one_sided;
};

template <typename opmath_t>
__device__ __forceinline__ opmath_t phi(opmath_t n, const PenaltyArgs<opmath_t>& a) {
  opmath_t d = n - a.target;
  if (a.one_sided) d = d_max(d, opmath_t(0));
  return d * d;
}

// The sum of squares of (inv_scale * g) over this thread's share of [start, end).
template <typename scalar_t>
__device__ __forceinline__ at::opmath_type<scalar_t> sum_squares(const scalar_t* __restrict__ g,
                                                                 int64_t start, int64_t end,
                                                                 int64_t lane, int64_t team,
                                                                 int phase,
                                                                 at::opmath_type<scalar_t> s) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  opmath_t acc = 0;
  for_range<V>(
      start, end, lane, team, phase,
      [&](int64_t k) {
        const Pack<scalar_t> x = load_pack(g + k);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const opmath_t v = s * static_cast<opmath_t>(x.v[j]);
          acc += v * v;
        }
      },
      [&](int64_t k) {
        const opmath_t v = s * static_cast<opmath_t>(g[k]);
        acc += v * v;
      });
  return acc;
}

// Team mode: partials [gridDim.x] per-block sums of phi; counters [1].
// Split mode: partials [B * P] per-chunk sums of squares, sample_phi [B]; counters [B + 1]: one
// per sample (its chunks), then one for the samples. norms: [B]; loss: 0-dim.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    norm_penalty_kernel(const scalar_t* __restrict__ g, int64_t B, int64_t N, int team, Divider P,
                        int64_t chunk, int phase, PenaltyArgs<at::opmath_type<scalar_t>> a,
                        at::opmath_type<scalar_t>* __restrict__ norms,
                        at::opmath_type<scalar_t>* __restrict__ loss,
                        at::opmath_type<scalar_t>* __restrict__ partials,
                        at::opmath_type<scalar_t>* __restrict__ sample_phi, unsigned* counters) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t s = a.inv_scale;

  if (team <= kWarp) {
    const TeamWalk t = team_walk(blockIdx.x, gridDim.x, threadIdx.x, team);
    opmath_t phi_sum = 0;
    for (int64_t i = t.first, w = t.warp_first; w < B; i += t.stride, w += t.stride) {
      opmath_t acc =
          i < B ? sum_squares(g, i * N, (i + 1) * N, t.lane, team, phase, s) : opmath_t(0);
      acc = team_sum(acc, team);
      if (i < B && t.lane == 0) {
        const opmath_t n = d_sqrt(acc);
        norms[i] = n;
        phi_sum += phi(n, a);
      }
    }
    phi_sum = block_sum<kBlock>(phi_sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = phi_sum;
    if (!last_block(counters)) return;
    opmath_t total = 0;
    for (int64_t b = threadIdx.x; b < gridDim.x; b += kBlock) total += __ldcg(partials + b);
    total = block_sum<kBlock>(total);
    if (threadIdx.x == 0) *loss = a.weight_over_b * total;
    return;
  }

  // Split mode: one chunk of one sample at a time. The block that finishes a sample's last
  // chunk adds its P partials in chunk order, and the block that finishes the last sample adds
  // the B values of phi: the second pass is spread over the grid, not left to one block.
  const int64_t n_chunks = static_cast<int64_t>(P.d);
  for (int64_t u = blockIdx.x; u < B * n_chunks; u += gridDim.x) {
    const SplitChunk c = split_chunk(u, P, chunk, N);
    opmath_t sq = block_sum<kBlock>(sum_squares(g, c.start, c.end, threadIdx.x, kBlock, phase, s));
    if (n_chunks > 1 && !finish_sample(sq, partials, counters, u, c.i, n_chunks)) continue;
    if (threadIdx.x == 0) {
      const opmath_t n = d_sqrt(sq);
      norms[c.i] = n;
      sample_phi[c.i] = phi(n, a);
    }
    if (!last_arrival(counters + B, static_cast<unsigned>(B))) continue;
    opmath_t phi_sum = 0;
    for (int64_t i = threadIdx.x; i < B; i += kBlock) phi_sum += __ldcg(sample_phi + i);
    phi_sum = block_sum<kBlock>(phi_sum);
    if (threadIdx.x == 0) *loss = a.weight_over_b * phi_sum;
  }
}

std::tuple<Tensor, Tensor> norm_penalty_cuda(const Tensor& grad, double target, double weight,
                                             bool one_sided, double inv_scale) {
  constexpr const char* op = "norm_penalty";
  check_norm_penalty(grad, target, weight, inv_scale);

  const c10::cuda::CUDAGuard guard(grad.device());
  const auto opmath = opmath_scalar_type(grad.scalar_type());
  const int64_t B = grad.size(0), N = grad.numel() / B;
  Tensor norms = at::empty({B}, grad.options().dtype(opmath));
  Tensor loss = at::empty({}, grad.options().dtype(opmath));
  if (N == 0) {
    // Every norm is 0: the loss is weight * phi(-target), the mean of B equal terms.
    norms.zero_();
    const double d = one_sided ? 0.0 : target;
    loss.fill_(weight * d * d);
    return {loss, norms};
  }
  // The order inside a sample does not matter for a sum of squares: any batch-major layout.
  const Tensor g = batch_major_dense(grad) ? grad : grad.contiguous();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const auto kernel = norm_penalty_kernel<scalar_t>;
    const SamplePlan plan = plan_samples(B, N, Vec<scalar_t>::size,
                                         resident_blocks(kernel, kBlock, grad.device().index()));
    // One buffer: the partials, then (split mode) the B values of phi.
    const int64_t n_partials = plan.split() ? (plan.P > 1 ? B * plan.P : 0) : plan.grid;
    Tensor work = at::empty({n_partials + (plan.split() ? B : 0)}, grad.options().dtype(opmath));
    opmath_t* partials = work.mutable_data_ptr<opmath_t>();
    Tensor counter_holder;
    unsigned* counters = nullptr;
    if (plan.grid > 1 || plan.split()) {
      counters = zeroed_counters(counter_holder, plan.split() ? B + 1 : 1, grad, stream);
    }
    const PenaltyArgs<opmath_t> args{
        static_cast<opmath_t>(inv_scale), static_cast<opmath_t>(target),
        static_cast<opmath_t>(weight / static_cast<double>(B)), one_sided};
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    kernel<<<plan.grid, kBlock, 0, stream>>>(gp, B, N, plan.team, Divider(plan.P), plan.chunk,
                                             phase_of(gp), args, norms.mutable_data_ptr<opmath_t>(),
                                             loss.mutable_data_ptr<opmath_t>(), partials,
                                             partials + n_partials, counters);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {loss, norms};
}

// ---- backward -----------------------------------------------------------------------------------

template <typename opmath_t>
struct BackwardArgs {
  const opmath_t* __restrict__ grad_loss;   // 0-dim, on the device
  const opmath_t* __restrict__ norms;       // [B], element stride norms_stride
  const opmath_t* __restrict__ grad_norms;  // [B] or nullptr, element stride gn_stride (0 if
                                            // expanded)
  int64_t norms_stride;
  int64_t gn_stride;
  opmath_t weight_over_b;  // weight / B
  opmath_t target;
  opmath_t inv_scale_sq;
  bool one_sided;
  bool target_zero;
};

// inv_scale^2 * c_i / n_i of sample i (0 on a zero row).
template <typename opmath_t>
__device__ __forceinline__ opmath_t sample_coef(int64_t i, opmath_t loss_coef,
                                                const BackwardArgs<opmath_t>& a) {
  const opmath_t n = a.norms[i * a.norms_stride];
  const opmath_t inv_n = n == opmath_t(0) ? opmath_t(0) : reciprocal(n);
  opmath_t ratio;  // phi'(n - target) / n
  if (a.target_zero && isfinite(n)) {
    ratio = opmath_t(2);  // phi'(n) / n = 2n / n, exactly, even at n = 0
  } else {
    opmath_t d = n - a.target;
    if (a.one_sided) d = d_max(d, opmath_t(0));
    ratio = opmath_t(2) * d * inv_n;
  }
  opmath_t c = loss_coef * ratio;
  if (a.grad_norms != nullptr) c += a.grad_norms[i * a.gn_stride] * inv_n;
  return a.inv_scale_sq * c;
}

// out = coef_i * g over a batch-major buffer; a thread walks packs, and the sample's coefficient
// is recomputed only when a pack crosses into another sample.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    norm_penalty_backward_kernel(const scalar_t* __restrict__ g, scalar_t* __restrict__ out,
                                 int64_t numel, Divider N, int phase,
                                 BackwardArgs<at::opmath_type<scalar_t>> a) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const opmath_t loss_coef = *a.grad_loss * a.weight_over_b;
  for_range<V, 2>(
      0, numel, static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x,
      static_cast<int64_t>(gridDim.x) * kBlock, phase,
      [&](int64_t k) {
        SampleCursor cur(k, N);
        opmath_t c = sample_coef(cur.i, loss_coef, a);
        const Pack<scalar_t> x = load_pack(g + k);
        Pack<scalar_t> y;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          if (cur.step(N)) c = sample_coef(cur.i, loss_coef, a);
          y.v[j] = static_cast<scalar_t>(c * static_cast<opmath_t>(x.v[j]));
        }
        store_pack(out + k, y);
      },
      [&](int64_t k) {
        const opmath_t c = sample_coef(N.div(k), loss_coef, a);
        out[k] = static_cast<scalar_t>(c * static_cast<opmath_t>(g[k]));
      });
}

Tensor norm_penalty_backward_cuda(const Tensor& grad_loss, const std::optional<Tensor>& grad_norms,
                                  const Tensor& grad, const Tensor& norms, double target,
                                  double weight, bool one_sided, double inv_scale) {
  constexpr const char* op = "norm_penalty_backward";
  check_norm_penalty_backward(grad_loss, grad_norms, grad, norms, target, weight, inv_scale);

  const c10::cuda::CUDAGuard guard(grad.device());
  const auto opmath = opmath_scalar_type(grad.scalar_type());
  const int64_t B = grad.size(0), N = grad.numel() / B;
  Tensor out = at::empty_like(grad);
  if (N == 0) return out;
  const bool direct = batch_major_dense(out);
  Tensor work = direct ? out : at::empty(grad.sizes(), grad.options());
  const Tensor g = in_layout_of(grad, work);
  // Already in the accumulation dtype on the autograd path, so these are no-ops (no launch);
  // strides are passed to the kernel, so an expanded grad_norms is read without a copy.
  const Tensor gl = grad_loss.to(opmath);
  const Tensor n = norms.to(opmath);
  const Tensor gn = grad_norms.has_value() ? grad_norms->to(opmath) : Tensor();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    BackwardArgs<opmath_t> args{};
    args.grad_loss = gl.const_data_ptr<opmath_t>();
    args.norms = n.const_data_ptr<opmath_t>();
    args.norms_stride = n.stride(0);
    args.grad_norms = gn.defined() ? gn.const_data_ptr<opmath_t>() : nullptr;
    args.gn_stride = gn.defined() ? gn.stride(0) : 0;
    args.weight_over_b = static_cast<opmath_t>(weight / static_cast<double>(B));
    args.target = static_cast<opmath_t>(target);
    args.inv_scale_sq = static_cast<opmath_t>(inv_scale * inv_scale);
    args.one_sided = one_sided;
    args.target_zero = target == 0;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* wp = work.mutable_data_ptr<scalar_t>();
    const auto kernel = norm_penalty_backward_kernel<scalar_t>;
    const int64_t grid =
        elementwise_grid(kernel, grad.numel(), Vec<scalar_t>::size, grad.device().index());
    kernel<<<grid, kBlock, 0, stream>>>(gp, wp, grad.numel(), Divider(N),
                                        common_phase(phase_of(gp), phase_of(wp)), args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!direct) out.copy_(work);
  return out;
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) {
  m.impl("norm_penalty", &cuda::norm_penalty_cuda);
  m.impl("norm_penalty_backward", &cuda::norm_penalty_backward_cuda);
}

}  // namespace gankernels
