// CUDA kernels of norm_penalty and norm_penalty_backward (math.md section 2).
//
//   forward   n_i = ||inv_scale * g_i||_2,  P = weight / B * sum_i phi(n_i - target)
//             phi(d) = d^2, or max(d, 0)^2 when one_sided
//   backward  dL/dg_ij = c_i * inv_scale^2 * g_ij / n_i,
//             c_i = grad_loss * weight / B * phi'(n_i - target) + grad_norms_i,
//             0 on a zero row; for target == 0, phi'(n) / n is exactly 2 (no division).
//
// Forward: ONE kernel launch (plus a 4-byte memset of the completion counter when the grid has
// more than one block). Per-sample sums of squares either by a team of lanes per sample (many
// small samples) or by P blocks per sample (few large ones, utils.cuh plan_samples); the last
// block to finish turns the partials into norms and the loss, adding them in a fixed order:
// the result is bitwise reproducible on a given GPU, and no float atomics are used.
// Backward: ONE elementwise launch; grad_loss is read from device memory inside the kernel
// (never .item(): no host synchronisation). Sums accumulate in float32 for half types (a half
// square overflows past |g| ~ 256) and in float64 for float64.
//
// Layouts: any batch-major dense layout (contiguous, channels_last) is read and written in
// place; anything else goes through one contiguous copy (common.h batch_major_dense).
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

template <typename acc_t>
struct PenaltyArgs {
  acc_t inv_scale;
  acc_t target;
  acc_t weight;
  bool one_sided;
};

template <typename acc_t>
__device__ __forceinline__ acc_t phi(acc_t n, const PenaltyArgs<acc_t>& a) {
  acc_t d = n - a.target;
  if (a.one_sided) d = d_max(d, acc_t(0));
  return d * d;
}

// partials: team mode: [gridDim.x] per-block sums of phi; split mode: [B * P] per-chunk sums
// of squares. norms: [B]; loss: 0-dim.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    norm_penalty_kernel(const scalar_t* __restrict__ g, int64_t B, int64_t N, int team,
                        int64_t P, int64_t chunk, bool aligned,
                        PenaltyArgs<opmath_t<scalar_t>> a, opmath_t<scalar_t>* __restrict__ norms,
                        opmath_t<scalar_t>* __restrict__ loss,
                        opmath_t<scalar_t>* __restrict__ partials, unsigned* counter) {
  using acc_t = opmath_t<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const acc_t s = a.inv_scale;

  if (team <= kWarp) {
    // Team mode: `team` lanes own a sample. The loop runs while the warp's first team has a
    // sample, so all 32 lanes reach every shuffle; lanes past B contribute zeros.
    const int lane = threadIdx.x % team;
    const int64_t teams_per_block = kBlock / team;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * teams_per_block;
    const int64_t my_team = blockIdx.x * teams_per_block + threadIdx.x / team;
    const int64_t warp_team = blockIdx.x * teams_per_block + (threadIdx.x / kWarp) * (kWarp / team);
    acc_t phi_sum = 0;
    for (int64_t i = my_team, w = warp_team; w < B; i += stride, w += stride) {
      acc_t acc = 0;
      if (i < B) {
        for_range<V>(
            i * N, (i + 1) * N, lane, team, aligned,
            [&](int64_t k) {
              const Pack<scalar_t> x = load_pack(g + k);
#pragma unroll
              for (int j = 0; j < V; ++j) {
                const acc_t v = s * static_cast<acc_t>(x.v[j]);
                acc += v * v;
              }
            },
            [&](int64_t k) {
              const acc_t v = s * static_cast<acc_t>(g[k]);
              acc += v * v;
            });
      }
      acc = team_sum(acc, team);
      if (i < B && lane == 0) {
        const acc_t n = d_sqrt(acc);
        norms[i] = n;
        phi_sum += phi(n, a);
      }
    }
    phi_sum = block_sum<kBlock>(phi_sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = phi_sum;
    if (!last_block(counter)) return;
    acc_t total = 0;
    for (int64_t b = threadIdx.x; b < gridDim.x; b += kBlock) total += __ldcg(partials + b);
    total = block_sum<kBlock>(total);
    if (threadIdx.x == 0) *loss = a.weight * (total / static_cast<acc_t>(B));
    return;
  }

  // Split mode: block-sized teams, one chunk of one sample at a time.
  for (int64_t u = blockIdx.x; u < B * P; u += gridDim.x) {
    const int64_t i = u / P, p = u - i * P;
    const int64_t start = i * N + p * chunk;
    const int64_t end = imin(start + chunk, (i + 1) * N);
    acc_t acc = 0;
    for_range<V>(
        start, end, threadIdx.x, kBlock, aligned,
        [&](int64_t k) {
          const Pack<scalar_t> x = load_pack(g + k);
#pragma unroll
          for (int j = 0; j < V; ++j) {
            const acc_t v = s * static_cast<acc_t>(x.v[j]);
            acc += v * v;
          }
        },
        [&](int64_t k) {
          const acc_t v = s * static_cast<acc_t>(g[k]);
          acc += v * v;
        });
    acc = block_sum<kBlock>(acc);
    if (threadIdx.x == 0) partials[u] = acc;
  }
  if (!last_block(counter)) return;
  // The short second pass: each sample's P partials in chunk order, then the loss.
  acc_t phi_sum = 0;
  for (int64_t i = threadIdx.x; i < B; i += kBlock) {
    acc_t sq = 0;
    for (int64_t p = 0; p < P; ++p) sq += __ldcg(partials + i * P + p);
    const acc_t n = d_sqrt(sq);
    norms[i] = n;
    phi_sum += phi(n, a);
  }
  phi_sum = block_sum<kBlock>(phi_sum);
  if (threadIdx.x == 0) *loss = a.weight * (phi_sum / static_cast<acc_t>(B));
}

std::tuple<Tensor, Tensor> norm_penalty_cuda(const Tensor& grad, double target, double weight,
                                             bool one_sided, double inv_scale) {
  constexpr const char* op = "norm_penalty";
  check_norm_penalty(grad, target, weight, inv_scale);

  const c10::cuda::CUDAGuard guard(grad.device());
  const auto acc = acc_scalar_type(grad.scalar_type());
  const int64_t B = grad.size(0), N = grad.numel() / B;
  Tensor norms = at::empty({B}, grad.options().dtype(acc));
  Tensor loss = at::empty({}, grad.options().dtype(acc));
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
    using acc_t = opmath_t<scalar_t>;
    const SamplePlan plan = plan_samples(B, N, Vec<scalar_t>::size, grad.device().index());
    const int64_t n_partials = plan.split() ? B * plan.P : plan.grid;
    Tensor partials = at::empty({n_partials}, grad.options().dtype(acc));
    Tensor counter_holder;
    unsigned* counter = plan.grid > 1 ? zeroed_counter(counter_holder, grad, stream) : nullptr;
    const PenaltyArgs<acc_t> args{static_cast<acc_t>(inv_scale), static_cast<acc_t>(target),
                                  static_cast<acc_t>(weight), one_sided};
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    norm_penalty_kernel<scalar_t><<<plan.grid, kBlock, 0, stream>>>(
        gp, B, N, plan.team, plan.P, plan.chunk, aligned16(gp), args,
        norms.mutable_data_ptr<acc_t>(), loss.mutable_data_ptr<acc_t>(),
        partials.mutable_data_ptr<acc_t>(), counter);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {loss, norms};
}

// ---- backward -----------------------------------------------------------------------------------

template <typename acc_t>
struct BackwardArgs {
  const acc_t* grad_loss;   // 0-dim, on the device
  const acc_t* norms;       // [B], element stride norms_stride
  const acc_t* grad_norms;  // [B] or nullptr, element stride gn_stride (0 when expanded)
  int64_t norms_stride;
  int64_t gn_stride;
  acc_t weight_over_b;      // weight / B
  acc_t target;
  acc_t inv_scale_sq;
  bool one_sided;
  bool target_zero;
};

// inv_scale^2 * c_i / n_i of sample i (0 on a zero row).
template <typename acc_t>
__device__ __forceinline__ acc_t sample_coef(int64_t i, acc_t loss_coef,
                                             const BackwardArgs<acc_t>& a) {
  const acc_t n = a.norms[i * a.norms_stride];
  acc_t ratio;  // phi'(n - target) / n
  if (a.target_zero && isfinite(n)) {
    ratio = acc_t(2);  // phi'(n) / n = 2n / n, exactly, even at n = 0
  } else if (n == acc_t(0)) {
    ratio = acc_t(0);
  } else {
    acc_t d = n - a.target;
    if (a.one_sided) d = d_max(d, acc_t(0));
    ratio = acc_t(2) * d / n;
  }
  acc_t c = loss_coef * ratio;
  if (a.grad_norms != nullptr && n != acc_t(0)) c += a.grad_norms[i * a.gn_stride] / n;
  return a.inv_scale_sq * c;
}

// out = coef_i * g over a batch-major buffer; a thread walks packs, and the sample index (and
// so its coefficient) is recomputed only when a pack crosses into another sample.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlock)
    norm_penalty_backward_kernel(const scalar_t* __restrict__ g, scalar_t* __restrict__ out,
                                 int64_t numel, int64_t N, bool aligned,
                                 BackwardArgs<opmath_t<scalar_t>> a) {
  using acc_t = opmath_t<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const acc_t loss_coef = *a.grad_loss * a.weight_over_b;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t n_packs = aligned ? numel / V : 0;
  for (int64_t q = tid; q < n_packs; q += stride) {
    const int64_t k = q * V;
    int64_t i = k / N, r = k - i * N;
    acc_t c = sample_coef(i, loss_coef, a);
    const Pack<scalar_t> x = load_pack(g + k);
    Pack<scalar_t> y;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      if (r == N) {  // this pack straddles a sample boundary
        ++i;
        r = 0;
        c = sample_coef(i, loss_coef, a);
      }
      ++r;
      y.v[j] = static_cast<scalar_t>(c * static_cast<acc_t>(x.v[j]));
    }
    store_pack(out + k, y);
  }
  for (int64_t k = n_packs * V + tid; k < numel; k += stride) {
    const acc_t c = sample_coef(k / N, loss_coef, a);
    out[k] = static_cast<scalar_t>(c * static_cast<acc_t>(g[k]));
  }
}

Tensor norm_penalty_backward_cuda(const Tensor& grad_loss, const std::optional<Tensor>& grad_norms,
                                  const Tensor& grad, const Tensor& norms, double target,
                                  double weight, bool one_sided, double inv_scale) {
  constexpr const char* op = "norm_penalty_backward";
  check_norm_penalty_backward(grad_loss, grad_norms, grad, norms, target, weight, inv_scale);

  const c10::cuda::CUDAGuard guard(grad.device());
  const auto acc = acc_scalar_type(grad.scalar_type());
  const int64_t B = grad.size(0), N = grad.numel() / B;
  Tensor out = at::empty_like(grad);
  if (N == 0) return out;
  const bool direct = batch_major_dense(out);
  Tensor work = direct ? out : at::empty(grad.sizes(), grad.options());
  const Tensor g = in_layout_of(grad, work);
  // Already in the accumulation dtype on the autograd path, so these are no-ops (no launch);
  // strides are passed to the kernel, so an expanded grad_norms is read without a copy.
  const Tensor gl = grad_loss.to(acc);
  const Tensor n = norms.to(acc);
  const Tensor gn = grad_norms.has_value() ? grad_norms->to(acc) : Tensor();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
    using acc_t = opmath_t<scalar_t>;
    BackwardArgs<acc_t> args{};
    args.grad_loss = gl.const_data_ptr<acc_t>();
    args.norms = n.const_data_ptr<acc_t>();
    args.norms_stride = n.stride(0);
    args.grad_norms = gn.defined() ? gn.const_data_ptr<acc_t>() : nullptr;
    args.gn_stride = gn.defined() ? gn.stride(0) : 0;
    args.weight_over_b = static_cast<acc_t>(weight / static_cast<double>(B));
    args.target = static_cast<acc_t>(target);
    args.inv_scale_sq = static_cast<acc_t>(inv_scale * inv_scale);
    args.one_sided = one_sided;
    args.target_zero = target == 0;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* wp = work.mutable_data_ptr<scalar_t>();
    const int64_t numel = grad.numel();
    constexpr int V = Vec<scalar_t>::size;
    const int64_t grid = std::max<int64_t>(
        1, std::min(ceil_div(ceil_div(numel, V), kBlock), resident_blocks(grad.device().index())));
    norm_penalty_backward_kernel<scalar_t><<<grid, kBlock, 0, stream>>>(
        gp, wp, numel, N, aligned16(gp) && aligned16(wp), args);
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
