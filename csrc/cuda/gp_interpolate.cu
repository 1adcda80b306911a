// CUDA kernels of gp_interpolate and gp_interpolate_backward (docs/math.md section 1).
//
//   forward   x_hat_ij = eps_i * real_ij + (1 - eps_i) * fake_ij
//   backward  grad_real = eps * g,  grad_fake = (1 - eps) * g,
//             grad_eps_i = sum_j g_ij * (real_ij - fake_ij)      (only when real/fake are given)
//
// Forward: ONE elementwise launch, 128-bit loads/stores, eps read once per pack (again only
// when a pack crosses a sample boundary). Backward without eps's gradient: ONE elementwise
// launch (it also writes eps's zero gradient). Backward with it: ONE launch that scales g and,
// in the same pass, reduces g * (real - fake) per sample (team or split mode, launch_plan.h;
// split mode with several chunks per sample adds a memset of one counter per sample, and the
// block that finishes a sample's last chunk adds its partials in order: deterministic, no
// atomics). Every array is read and written in 128-bit packs when their pack phases agree
// (a common misalignment is peeled off as a scalar head).
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

// ---- forward ------------------------------------------------------------------------------------

template <typename scalar_t, typename eps_t>
__global__ void __launch_bounds__(kBlock)
    gp_interpolate_kernel(const scalar_t* __restrict__ real, const scalar_t* __restrict__ fake,
                          const eps_t* __restrict__ eps, int64_t eps_stride,
                          scalar_t* __restrict__ out, int64_t numel, Divider N, int phase) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  for_range<V, 2>(
      0, numel, static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x,
      static_cast<int64_t>(gridDim.x) * kBlock, phase,
      [&](int64_t k) {
        SampleCursor cur(k, N);
        opmath_t e = static_cast<opmath_t>(eps[cur.i * eps_stride]);
        const Pack<scalar_t> x = load_pack(real + k);
        const Pack<scalar_t> y = load_pack(fake + k);
        Pack<scalar_t> z;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          if (cur.step(N)) e = static_cast<opmath_t>(eps[cur.i * eps_stride]);
          z.v[j] = static_cast<scalar_t>(e * static_cast<opmath_t>(x.v[j]) +
                                         (opmath_t(1) - e) * static_cast<opmath_t>(y.v[j]));
        }
        store_pack(out + k, z);
      },
      [&](int64_t k) {
        const opmath_t e = static_cast<opmath_t>(eps[N.div(k) * eps_stride]);
        out[k] = static_cast<scalar_t>(e * static_cast<opmath_t>(real[k]) +
                                       (opmath_t(1) - e) * static_cast<opmath_t>(fake[k]));
      });
}

// eps as the kernels read it: in real's dtype when it already has it (no conversion launch),
// else converted once to the accumulation dtype.
Tensor eps_for_kernel(const Tensor& eps, at::ScalarType dtype) {
  return eps.scalar_type() == dtype ? eps : eps.to(opmath_scalar_type(dtype));
}

// Runs `body(tag)` with tag a null `const eps_t*`, eps_t = scalar_t or at::opmath_type<scalar_t>,
// whichever `e` holds.
template <typename scalar_t, typename Body>
void with_eps_type(const Tensor& e, Body&& body) {
  if (e.scalar_type() == c10::CppTypeToScalarType<scalar_t>::value) {
    body(static_cast<const scalar_t*>(nullptr));
  } else {
    body(static_cast<const at::opmath_type<scalar_t>*>(nullptr));
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
      const auto kernel = gp_interpolate_kernel<scalar_t, eps_t>;
      const int64_t grid =
          elementwise_grid(kernel, numel, Vec<scalar_t>::size, real.device().index());
      kernel<<<grid, kBlock, 0, stream>>>(rp, fp, e.const_data_ptr<eps_t>(), e.stride(0), wp, numel,
                                          Divider(N),
                                          common_phase(phase_of(rp), phase_of(fp), phase_of(wp)));
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
                    scalar_t* __restrict__ grad_fake, int64_t numel, Divider N, int phase,
                    unsigned char* __restrict__ zero_bytes, int64_t n_zero_bytes) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock;
  // eps's (unwanted) gradient is zeros: written here rather than by a second launch. All-zero
  // bytes are +0 in every floating dtype.
#pragma unroll 1  // a compiler-unrolled loop would divide by the runtime stride
  for (int64_t k = tid; k < n_zero_bytes; k += stride) zero_bytes[k] = 0;
  for_range<V, 2>(
      0, numel, tid, stride, phase,
      [&](int64_t k) {
        SampleCursor cur(k, N);
        opmath_t e = static_cast<opmath_t>(eps[cur.i * eps_stride]);
        const Pack<scalar_t> x = load_pack(g + k);
        Pack<scalar_t> a, b;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          if (cur.step(N)) e = static_cast<opmath_t>(eps[cur.i * eps_stride]);
          const opmath_t gj = static_cast<opmath_t>(x.v[j]);
          a.v[j] = static_cast<scalar_t>(e * gj);
          b.v[j] = static_cast<scalar_t>((opmath_t(1) - e) * gj);
        }
        store_pack(grad_real + k, a);
        store_pack(grad_fake + k, b);
      },
      [&](int64_t k) {
        const opmath_t e = static_cast<opmath_t>(eps[N.div(k) * eps_stride]);
        const opmath_t gj = static_cast<opmath_t>(g[k]);
        grad_real[k] = static_cast<scalar_t>(e * gj);
        grad_fake[k] = static_cast<scalar_t>((opmath_t(1) - e) * gj);
      });
}

template <typename scalar_t, typename eps_t>
struct BackwardPtrs {
  const scalar_t* __restrict__ g;
  const scalar_t* __restrict__ real;
  const scalar_t* __restrict__ fake;
  const eps_t* __restrict__ eps;
  int64_t eps_stride;
  scalar_t* __restrict__ grad_real;
  scalar_t* __restrict__ grad_fake;
  eps_t* __restrict__ grad_eps;  // [B], contiguous
};

// Scales g for [start, end) of sample i and returns this thread's part of
// sum g * (real - fake) over it.
template <typename scalar_t, typename eps_t>
__device__ __forceinline__ at::opmath_type<scalar_t> scale_and_reduce(
    const BackwardPtrs<scalar_t, eps_t>& p, int64_t i, int64_t start, int64_t end, int64_t lane,
    int64_t team, int phase) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  const opmath_t e = static_cast<opmath_t>(p.eps[i * p.eps_stride]);
  const opmath_t ce = opmath_t(1) - e;
  opmath_t acc = 0;
  for_range<V, 1>(
      start, end, lane, team, phase,
      [&](int64_t k) {
        const Pack<scalar_t> x = load_pack(p.g + k);
        const Pack<scalar_t> r = load_pack(p.real + k);
        const Pack<scalar_t> f = load_pack(p.fake + k);
        Pack<scalar_t> a, b;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const opmath_t gj = static_cast<opmath_t>(x.v[j]);
          a.v[j] = static_cast<scalar_t>(e * gj);
          b.v[j] = static_cast<scalar_t>(ce * gj);
          acc += (static_cast<opmath_t>(r.v[j]) - static_cast<opmath_t>(f.v[j])) * gj;
        }
        store_pack(p.grad_real + k, a);
        store_pack(p.grad_fake + k, b);
      },
      [&](int64_t k) {
        const opmath_t gj = static_cast<opmath_t>(p.g[k]);
        p.grad_real[k] = static_cast<scalar_t>(e * gj);
        p.grad_fake[k] = static_cast<scalar_t>(ce * gj);
        acc += (static_cast<opmath_t>(p.real[k]) - static_cast<opmath_t>(p.fake[k])) * gj;
      });
  return acc;
}

// partials [B * P] and counters [B] (one per sample): split mode with P > 1 only.
template <typename scalar_t, typename eps_t>
__global__ void __launch_bounds__(kBlock)
    gp_backward_kernel(BackwardPtrs<scalar_t, eps_t> p, int64_t B, int64_t N, int team, Divider P,
                       int64_t chunk, int phase, at::opmath_type<scalar_t>* __restrict__ partials,
                       unsigned* counters) {
  using opmath_t = at::opmath_type<scalar_t>;
  if (team <= kWarp) {
    // Team mode: a team of lanes owns each sample and writes its grad_eps directly.
    const TeamWalk t = team_walk(blockIdx.x, gridDim.x, threadIdx.x, team);
    for (int64_t i = t.first, w = t.warp_first; w < B; i += t.stride, w += t.stride) {
      opmath_t acc = 0;
      if (i < B) acc = scale_and_reduce(p, i, i * N, (i + 1) * N, t.lane, team, phase);
      acc = team_sum(acc, team);
      if (i < B && t.lane == 0) p.grad_eps[i] = static_cast<eps_t>(acc);
    }
    return;
  }
  // Split mode: one chunk of one sample per block at a time; the block that finishes a sample's
  // last chunk adds its P partials in chunk order.
  const int64_t n_chunks = static_cast<int64_t>(P.d);
  for (int64_t u = blockIdx.x; u < B * n_chunks; u += gridDim.x) {
    const SplitChunk c = split_chunk(u, P, chunk, N);
    opmath_t sum =
        block_sum<kBlock>(scale_and_reduce(p, c.i, c.start, c.end, threadIdx.x, kBlock, phase));
    if (n_chunks > 1 && !finish_sample(sum, partials, counters, u, c.i, n_chunks)) continue;
    if (threadIdx.x == 0) p.grad_eps[c.i] = static_cast<eps_t>(sum);
  }
}

std::tuple<Tensor, Tensor, Tensor> gp_interpolate_backward_cuda(const Tensor& grad,
                                                                const Tensor& eps,
                                                                const std::optional<Tensor>& real,
                                                                const std::optional<Tensor>& fake) {
  constexpr const char* op = "gp_interpolate_backward";
  check_gp_interpolate_backward(grad, eps, real, fake);
  const bool need_eps = real.has_value();

  const c10::cuda::CUDAGuard guard(grad.device());
  Tensor grad_real = at::empty_like(grad);
  Tensor grad_fake = at::empty_like(grad);
  const int64_t B = grad.size(0), numel = grad.numel(), N = numel / B;
  if (N == 0) return {grad_real, grad_fake, at::zeros({B}, eps.options())};
  const bool direct = batch_major_dense(grad_real);
  Tensor work_real = direct ? grad_real : at::empty(grad.sizes(), grad.options());
  Tensor work_fake = direct ? grad_fake : at::empty(grad.sizes(), grad.options());
  const Tensor g = in_layout_of(grad, work_real);
  const Tensor e = eps_for_kernel(eps, grad.scalar_type());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto device = grad.device().index();
  Tensor grad_eps;

  if (!need_eps) {
    // No reduction: one elementwise pass, which also writes eps's zero gradient.
    grad_eps = at::empty({B}, eps.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
      with_eps_type<scalar_t>(e, [&](auto tag) {
        using eps_t = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        const scalar_t* gp = g.const_data_ptr<scalar_t>();
        scalar_t* rp = work_real.mutable_data_ptr<scalar_t>();
        scalar_t* fp = work_fake.mutable_data_ptr<scalar_t>();
        const auto kernel = gp_scale_kernel<scalar_t, eps_t>;
        const int64_t grid = elementwise_grid(kernel, numel, Vec<scalar_t>::size, device);
        kernel<<<grid, kBlock, 0, stream>>>(
            gp, e.const_data_ptr<eps_t>(), e.stride(0), rp, fp, numel, Divider(N),
            common_phase(phase_of(gp), phase_of(rp), phase_of(fp)),
            static_cast<unsigned char*>(grad_eps.data_ptr()), B * grad_eps.element_size());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  } else {
    const Tensor r = in_layout_of(*real, work_real);
    const Tensor f = in_layout_of(*fake, work_real);
    // Written in the dtype the kernel reads eps in; converted back only if eps had another.
    grad_eps = at::empty({B}, eps.options().dtype(e.scalar_type()));
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), op, [&] {
      using opmath_t = at::opmath_type<scalar_t>;
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
        // One phase for all five arrays, or none (scalar code).
        const int phase =
            common_phase(common_phase(phase_of(p.g), phase_of(p.real), phase_of(p.fake)),
                         phase_of(p.grad_real), phase_of(p.grad_fake));
        const auto kernel = gp_backward_kernel<scalar_t, eps_t>;
        const SamplePlan plan =
            plan_samples(B, N, Vec<scalar_t>::size, resident_blocks(kernel, kBlock, device));
        Tensor partials, counter_holder;
        unsigned* counters = nullptr;
        if (plan.split() && plan.P > 1) {
          partials =
              at::empty({B * plan.P}, grad.options().dtype(opmath_scalar_type(grad.scalar_type())));
          counters = zeroed_counters(counter_holder, B, grad, stream);
        }
        kernel<<<plan.grid, kBlock, 0, stream>>>(
            p, B, N, plan.team, Divider(plan.P), plan.chunk, phase,
            partials.defined() ? partials.mutable_data_ptr<opmath_t>() : nullptr, counters);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
    if (grad_eps.scalar_type() != eps.scalar_type()) grad_eps = grad_eps.to(eps.scalar_type());
  }
  if (!direct) {
    grad_real.copy_(work_real);
    grad_fake.copy_(work_fake);
  }
  return {grad_real, grad_fake, grad_eps};
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) {
  m.impl("gp_interpolate", &cuda::gp_interpolate_cuda);
  m.impl("gp_interpolate_backward", &cuda::gp_interpolate_backward_cuda);
}

}  // namespace gankernels
