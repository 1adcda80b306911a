// CUDA kernels of gp_interpolate and gp_interpolate_backward (math.md section 1).
//
//   forward   x_hat_ij = eps_i * real_ij + (1 - eps_i) * fake_ij
//   backward  grad_real = eps * g,  grad_fake = (1 - eps) * g,
//             grad_eps_i = sum_j g_ij * (real_ij - fake_ij)      (only when real/fake are given)
//
// Forward: ONE elementwise launch, 128-bit loads/stores, eps read once per pack (again only
// when a pack crosses a sample boundary). Backward without eps's gradient: ONE elementwise
// launch (it also writes eps's zero gradient). Backward with it: ONE launch that scales g and,
// in the same pass, reduces g * (real - fake) per sample (team or split mode, utils.cuh; split
// mode adds a 4-byte memset and lets the last block add each sample's partials in order:
// deterministic, no atomics).
//
// Layouts: every tensor is brought to the output's layout (empty_like(real) / empty_like(grad)).
// A batch-major dense layout (contiguous, channels_last) is used in place; a strided or expanded
// input is copied once into it; a dense output whose batch dim is not outermost is computed
// through a contiguous buffer. Half types compute in float32, float64 in float64. eps may have
// another floating dtype than real: it is then read in the accumulation dtype.
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "checks.h"
#include "utils.cuh"

namespace gankernels {
namespace cuda {
namespace {

using at::Tensor;

int64_t elementwise_grid(int64_t numel, int vec, c10::DeviceIndex device) {
  return std::max<int64_t>(
      1, std::min(ceil_div(ceil_div(numel, vec), kBlock), resident_blocks(device)));
}

// ---- forward ------------------------------------------------------------------------------------

template <typename scalar_t, typename eps_t>
__global__ void __launch_bounds__(kBlock)
    gp_interpolate_kernel(const scalar_t* __restrict__ real, const scalar_t* __restrict__ fake,
                          const eps_t* __restrict__ eps, int64_t eps_stride,
                          scalar_t* __restrict__ out, int64_t numel, int64_t N, bool aligned) {
  using acc_t = opmath_t<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t n_packs = aligned ? numel / V : 0;
  for (int64_t q = tid; q < n_packs; q += stride) {
    const int64_t k = q * V;
    int64_t i = k / N, r = k - i * N;
    acc_t e = static_cast<acc_t>(eps[i * eps_stride]);
    const Pack<scalar_t> x = load_pack(real + k);
    const Pack<scalar_t> y = load_pack(fake + k);
    Pack<scalar_t> z;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      if (r == N) {  // the pack straddles a sample boundary
        ++i;
        r = 0;
        e = static_cast<acc_t>(eps[i * eps_stride]);
      }
      ++r;
      z.v[j] = static_cast<scalar_t>(e * static_cast<acc_t>(x.v[j]) +
                                     (acc_t(1) - e) * static_cast<acc_t>(y.v[j]));
    }
    store_pack(out + k, z);
  }
  for (int64_t k = n_packs * V + tid; k < numel; k += stride) {
    const acc_t e = static_cast<acc_t>(eps[(k / N) * eps_stride]);
    out[k] = static_cast<scalar_t>(e * static_cast<acc_t>(real[k]) +
                                   (acc_t(1) - e) * static_cast<acc_t>(fake[k]));
  }
}

// eps as the kernels read it: in real's dtype when it already has it (no conversion launch),
// else converted once to the accumulation dtype.
Tensor eps_for_kernel(const Tensor& eps, at::ScalarType dtype) {
  return eps.scalar_type() == dtype ? eps : eps.to(acc_scalar_type(dtype));
}

// Runs `body.template operator()<eps_t>()` with eps_t = scalar_t or opmath_t<scalar_t>,
// whichever `e` holds.
template <typename scalar_t, typename Body>
void with_eps_type(const Tensor& e, Body&& body) {
  if (e.scalar_type() == c10::CppTypeToScalarType<scalar_t>::value) {
    body(static_cast<const scalar_t*>(nullptr));
  } else {
    body(static_cast<const opmath_t<scalar_t>*>(nullptr));
  }
}

Tensor gp_interpolate_cuda(const Tensor& real, const Tensor& fake, const Tensor& eps) {
  constexpr const char* op = "gp_interpolate";
  check_gp_interpolate(real, fake, eps);

  const c10::cuda::CUDAGuard guard(real.device());
  Tensor out = at::empty_like(real);
  const int64_t B = real.size(0), numel = real.numel(), N = numel / B;
  if (N == 0) return out;
  // A dense output whose batch dim is not outermost (a permuted real) is filled through a
  // contiguous buffer; every other case writes the output directly.
  const bool direct = batch_major_dense(out);
  Tensor work = direct ? out : at::empty(real.sizes(), real.options());
  const Tensor r = in_layout_of(real, work);
  const Tensor f = in_layout_of(fake, work);
  const Tensor e = eps_for_kernel(eps, real.scalar_type());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, real.scalar_type(), op, [&] {
    with_eps_type<scalar_t>(e, [&](auto tag) {
      using eps_t = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
      const scalar_t* rp = r.const_data_ptr<scalar_t>();
      const scalar_t* fp = f.const_data_ptr<scalar_t>();
      scalar_t* wp = work.mutable_data_ptr<scalar_t>();
      const bool aligned = aligned16(rp) && aligned16(fp) && aligned16(wp);
      const int64_t grid = elementwise_grid(numel, Vec<scalar_t>::size, real.device().index());
      gp_interpolate_kernel<scalar_t, eps_t><<<grid, kBlock, 0, stream>>>(
          rp, fp, e.const_data_ptr<eps_t>(), e.stride(0), wp, numel, N, aligned);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (!direct) out.copy_(work);
  return out;
}

// ---- backward -----------------------------------------------------------------------------------

// grad_real = eps * g, grad_fake = (1 - eps) * g: the elementwise pass alone.
template <typename scalar_t, typename eps_t>
__global__ void __launch_bounds__(kBlock)
    gp_scale_kernel(const scalar_t* __restrict__ g, const eps_t* __restrict__ eps,
                    int64_t eps_stride, scalar_t* __restrict__ grad_real,
                    scalar_t* __restrict__ grad_fake, int64_t numel, int64_t N, bool aligned,
                    unsigned char* __restrict__ zero_bytes, int64_t n_zero_bytes) {
  using acc_t = opmath_t<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  // eps's (unwanted) gradient is zeros: written here rather than by a second launch. All-zero
  // bytes are +0 in every floating dtype.
  for (int64_t k = tid; k < n_zero_bytes; k += stride) zero_bytes[k] = 0;
  const int64_t n_packs = aligned ? numel / V : 0;
  for (int64_t q = tid; q < n_packs; q += stride) {
    const int64_t k = q * V;
    int64_t i = k / N, r = k - i * N;
    acc_t e = static_cast<acc_t>(eps[i * eps_stride]);
    const Pack<scalar_t> x = load_pack(g + k);
    Pack<scalar_t> a, b;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      if (r == N) {
        ++i;
        r = 0;
        e = static_cast<acc_t>(eps[i * eps_stride]);
      }
      ++r;
      const acc_t gj = static_cast<acc_t>(x.v[j]);
      a.v[j] = static_cast<scalar_t>(e * gj);
      b.v[j] = static_cast<scalar_t>((acc_t(1) - e) * gj);
    }
    store_pack(grad_real + k, a);
    store_pack(grad_fake + k, b);
  }
  for (int64_t k = n_packs * V + tid; k < numel; k += stride) {
    const acc_t e = static_cast<acc_t>(eps[(k / N) * eps_stride]);
    const acc_t gj = static_cast<acc_t>(g[k]);
    grad_real[k] = static_cast<scalar_t>(e * gj);
    grad_fake[k] = static_cast<scalar_t>((acc_t(1) - e) * gj);
  }
}

template <typename scalar_t, typename eps_t>
struct BackwardPtrs {
  const scalar_t* g;
  const scalar_t* real;
  const scalar_t* fake;
  const eps_t* eps;
  int64_t eps_stride;
  scalar_t* grad_real;
  scalar_t* grad_fake;
  eps_t* grad_eps;  // [B], contiguous
};

// Scales g for [start, end) of sample i and returns this thread's part of
// sum g * (real - fake) over it.
template <typename scalar_t, typename eps_t>
__device__ __forceinline__ opmath_t<scalar_t> scale_and_reduce(
    const BackwardPtrs<scalar_t, eps_t>& p, int64_t i, int64_t start, int64_t end, int lane,
    int team, bool aligned) {
  using acc_t = opmath_t<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const acc_t e = static_cast<acc_t>(p.eps[i * p.eps_stride]);
  const acc_t ce = acc_t(1) - e;
  acc_t acc = 0;
  for_range<V>(
      start, end, lane, team, aligned,
      [&](int64_t k) {
        const Pack<scalar_t> x = load_pack(p.g + k);
        const Pack<scalar_t> r = load_pack(p.real + k);
        const Pack<scalar_t> f = load_pack(p.fake + k);
        Pack<scalar_t> a, b;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const acc_t gj = static_cast<acc_t>(x.v[j]);
          a.v[j] = static_cast<scalar_t>(e * gj);
          b.v[j] = static_cast<scalar_t>(ce * gj);
          acc += (static_cast<acc_t>(r.v[j]) - static_cast<acc_t>(f.v[j])) * gj;
        }
        store_pack(p.grad_real + k, a);
        store_pack(p.grad_fake + k, b);
      },
      [&](int64_t k) {
        const acc_t gj = static_cast<acc_t>(p.g[k]);
        p.grad_real[k] = static_cast<scalar_t>(e * gj);
        p.grad_fake[k] = static_cast<scalar_t>(ce * gj);
        acc += (static_cast<acc_t>(p.real[k]) - static_cast<acc_t>(p.fake[k])) * gj;
      });
  return acc;
}

template <typename scalar_t, typename eps_t>
__global__ void __launch_bounds__(kBlock)
    gp_backward_kernel(BackwardPtrs<scalar_t, eps_t> p, int64_t B, int64_t N, int team,
                       int64_t P, int64_t chunk, bool aligned,
                       opmath_t<scalar_t>* __restrict__ partials, unsigned* counter) {
  using acc_t = opmath_t<scalar_t>;
  if (team <= kWarp) {
    // Team mode: a team of lanes owns each sample and writes its grad_eps directly.
    const int lane = threadIdx.x % team;
    const int64_t teams_per_block = kBlock / team;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * teams_per_block;
    const int64_t my_team = blockIdx.x * teams_per_block + threadIdx.x / team;
    const int64_t warp_team = blockIdx.x * teams_per_block + (threadIdx.x / kWarp) * (kWarp / team);
    for (int64_t i = my_team, w = warp_team; w < B; i += stride, w += stride) {
      acc_t acc = 0;
      if (i < B) acc = scale_and_reduce(p, i, i * N, (i + 1) * N, lane, team, aligned);
      acc = team_sum(acc, team);
      if (i < B && lane == 0) p.grad_eps[i] = static_cast<eps_t>(acc);
    }
    return;
  }
  // Split mode: one chunk of one sample per block at a time, then the last block's pass.
  for (int64_t u = blockIdx.x; u < B * P; u += gridDim.x) {
    const int64_t i = u / P, c = u - i * P;
    const int64_t start = i * N + c * chunk;
    const int64_t end = imin(start + chunk, (i + 1) * N);
    acc_t acc = scale_and_reduce(p, i, start, end, threadIdx.x, kBlock, aligned);
    acc = block_sum<kBlock>(acc);
    if (threadIdx.x == 0) partials[u] = acc;
  }
  if (!last_block(counter)) return;
  for (int64_t i = threadIdx.x; i < B; i += kBlock) {
    acc_t sum = 0;
    for (int64_t c = 0; c < P; ++c) sum += __ldcg(partials + i * P + c);
    p.grad_eps[i] = static_cast<eps_t>(sum);
  }
}

std::tuple<Tensor, Tensor, Tensor> gp_interpolate_backward_cuda(
    const Tensor& grad, const Tensor& eps, const std::optional<Tensor>& real,
    const std::optional<Tensor>& fake) {
  constexpr const char* op = "gp_interpolate_backward";
  check_gp_interpolate_backward(grad, eps, real, fake);
  const bool need_eps = real.has_value();

  const c10::cuda::CUDAGuard guard(grad.device());
  Tensor grad_real = at::empty_like(grad);
  Tensor grad_fake = at::empty_like(grad);
  const int64_t B = grad.size(0), numel = grad.numel(), N = numel / B;
  if (N == 0 || !need_eps) {
    // No reduction: one elementwise pass, which also writes eps's zero gradient.
    if (N == 0) return {grad_real, grad_fake, at::zeros({B}, eps.options())};
    Tensor grad_eps = at::empty({B}, eps.options());
    const bool direct = batch_major_dense(grad_real);
    Tensor work_real = direct ? grad_real : at::empty(grad.sizes(), grad.options());
    Tensor work_fake = direct ? grad_fake : at::empty(grad.sizes(), grad.options());
    const Tensor g = in_layout_of(grad, work_real);
    const Tensor e = eps_for_kernel(eps, grad.scalar_type());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
      with_eps_type<scalar_t>(e, [&](auto tag) {
        using eps_t = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        const scalar_t* gp = g.const_data_ptr<scalar_t>();
        scalar_t* rp = work_real.mutable_data_ptr<scalar_t>();
        scalar_t* fp = work_fake.mutable_data_ptr<scalar_t>();
        const bool aligned = aligned16(gp) && aligned16(rp) && aligned16(fp);
        const int64_t grid = elementwise_grid(numel, Vec<scalar_t>::size, grad.device().index());
        gp_scale_kernel<scalar_t, eps_t><<<grid, kBlock, 0, stream>>>(
            gp, e.const_data_ptr<eps_t>(), e.stride(0), rp, fp, numel, N, aligned,
            static_cast<unsigned char*>(grad_eps.data_ptr()), B * grad_eps.element_size());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
    if (!direct) {
      grad_real.copy_(work_real);
      grad_fake.copy_(work_fake);
    }
    return {grad_real, grad_fake, grad_eps};
  }

  const bool direct = batch_major_dense(grad_real);
  Tensor work_real = direct ? grad_real : at::empty(grad.sizes(), grad.options());
  Tensor work_fake = direct ? grad_fake : at::empty(grad.sizes(), grad.options());
  const Tensor g = in_layout_of(grad, work_real);
  const Tensor r = in_layout_of(*real, work_real);
  const Tensor f = in_layout_of(*fake, work_real);
  const Tensor e = eps_for_kernel(eps, grad.scalar_type());
  // Written in the dtype the kernel reads eps in; converted back only if eps had another.
  Tensor grad_eps = at::empty({B}, eps.options().dtype(e.scalar_type()));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
    using acc_t = opmath_t<scalar_t>;
    with_eps_type<scalar_t>(e, [&](auto tag) {
      using eps_t = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
      BackwardPtrs<scalar_t, eps_t> p{};
      p.g = g.const_data_ptr<scalar_t>();
      p.real = r.const_data_ptr<scalar_t>();
      p.fake = f.const_data_ptr<scalar_t>();
      p.eps = e.const_data_ptr<eps_t>();
      p.eps_stride = e.stride(0);
      p.grad_real = work_real.mutable_data_ptr<scalar_t>();
      p.grad_fake = work_fake.mutable_data_ptr<scalar_t>();
      p.grad_eps = grad_eps.mutable_data_ptr<eps_t>();
      const bool aligned = aligned16(p.g) && aligned16(p.real) && aligned16(p.fake) &&
                           aligned16(p.grad_real) && aligned16(p.grad_fake);
      const SamplePlan plan = plan_samples(B, N, Vec<scalar_t>::size, grad.device().index());
      Tensor partials, counter_holder;
      unsigned* counter = nullptr;
      if (plan.split()) {
        const auto acc = acc_scalar_type(grad.scalar_type());
        partials = at::empty({B * plan.P}, grad.options().dtype(acc));
        if (plan.grid > 1) counter = zeroed_counter(counter_holder, grad, stream);
      }
      gp_backward_kernel<scalar_t, eps_t><<<plan.grid, kBlock, 0, stream>>>(
          p, B, N, plan.team, plan.P, plan.chunk, aligned,
          partials.defined() ? partials.mutable_data_ptr<acc_t>() : nullptr, counter);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (!direct) {
    grad_real.copy_(work_real);
    grad_fake.copy_(work_fake);
  }
  return {grad_real, grad_fake,
          grad_eps.scalar_type() == eps.scalar_type() ? grad_eps : grad_eps.to(eps.scalar_type())};
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) {
  m.impl("gp_interpolate", &cuda::gp_interpolate_cuda);
  m.impl("gp_interpolate_backward", &cuda::gp_interpolate_backward_cuda);
}

}  // namespace gankernels
