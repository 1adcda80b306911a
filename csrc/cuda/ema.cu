// CUDA kernel of ema_ (docs/math.md section 4): t <- t + w * (s - t), w = 1 - decay, in place for
// every (target, source) pair of two lists of tensors.
//
// The multi-tensor pattern of clip_ (clip.cu): the pairs' addresses and sizes are packed into the
// kernel-argument struct and each block updates one chunk of one pair; launch_plan.h
// plan_clip_launches cuts a long list into launches (tested on the host). So a generator's
// whole parameter list is one launch (a few for hundreds of tensors), where a per-parameter
// lerp_ loop is one launch per tensor. Mixed dtypes share a launch: each tensor carries its
// dtype. Each chunk is walked in 128-bit packs of the target and the source when the two share
// their alignment (the usual case: two copies of one module), element by element otherwise;
// the arithmetic is in float32 (float64 for float64), rounded once. A pair whose target is not
// dense, or whose source is laid out differently, goes through one copy of each.
#include <ATen/MemoryOverlap.h>
#include <torch/library.h>

#include <vector>

#include "checks.h"
#include "layout.h"
#include "utils.cuh"

namespace gankernels {
namespace cuda {
namespace {

using at::Tensor;

constexpr int kEmaBlock = 512;
constexpr int64_t kMinChunk = 4 * kEmaBlock;
constexpr int64_t kMaxChunk = 65536;

#if defined(CUDART_VERSION) && CUDART_VERSION >= 12010
// CUDA 12.1+ on Volta and later: kernel parameters up to 32,764 bytes.
constexpr size_t kParamBytes = 32764;
constexpr int kMaxTensors = 320;
constexpr int kMaxBlocks = 2560;
#else
constexpr size_t kParamBytes = 4096;
constexpr int kMaxTensors = 40;
constexpr int kMaxBlocks = 400;
#endif

enum class Dtype : uint8_t { Float, Double, Half, BFloat16 };

// The kernel-argument metadata of one launch.
struct EmaMeta {
  void* target[kMaxTensors];
  const void* source[kMaxTensors];
  int64_t numel[kMaxTensors];
  int64_t chunk;                         // elements per block
  double w;                              // 1 - decay
  uint16_t block_to_tensor[kMaxBlocks];  // block b updates pair block_to_tensor[b] ...
  int32_t block_to_chunk[kMaxBlocks];    // ... from element block_to_chunk[b] * chunk
  Dtype dtype[kMaxTensors];
};
static_assert(sizeof(EmaMeta) <= kParamBytes, "ema_ metadata too large");

template <typename scalar_t>
__device__ __forceinline__ void lerp_chunk(scalar_t* __restrict__ t, const scalar_t* __restrict__ s,
                                           int64_t n, at::opmath_type<scalar_t> w) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int V = Vec<scalar_t>::size;
  // torch.lerp's two forms (exact at w = 0 and w = 1); the choice is uniform over the launch.
  const bool low = w < opmath_t(0.5);
  const opmath_t v = opmath_t(1) - w;
  const auto lerp = [&](scalar_t a, scalar_t b) {
    const opmath_t x = static_cast<opmath_t>(a), y = static_cast<opmath_t>(b);
    return static_cast<scalar_t>(low ? x + w * (y - x) : y - (y - x) * v);
  };
  for_range<V, 2>(
      0, n, threadIdx.x, kEmaBlock, common_phase(phase_of(t), phase_of(s)),
      [&](int64_t k) {
        Pack<scalar_t> a = load_pack(t + k);
        const Pack<scalar_t> b = load_pack(s + k);
#pragma unroll
        for (int j = 0; j < V; ++j) a.v[j] = lerp(a.v[j], b.v[j]);
        store_pack(t + k, a);
      },
      [&](int64_t k) { t[k] = lerp(t[k], s[k]); });
}

template <typename scalar_t>
__device__ __forceinline__ void update(const EmaMeta& meta, int p, int64_t begin, int64_t n) {
  lerp_chunk(static_cast<scalar_t*>(meta.target[p]) + begin,
             static_cast<const scalar_t*>(meta.source[p]) + begin, n,
             static_cast<at::opmath_type<scalar_t>>(meta.w));
}

__global__ void __launch_bounds__(kEmaBlock, 2) ema_kernel(const EmaMeta meta) {
  const int p = meta.block_to_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(meta.block_to_chunk[blockIdx.x]) * meta.chunk;
  const int64_t n = imin(meta.chunk, meta.numel[p] - begin);
  switch (meta.dtype[p]) {
    case Dtype::Float: update<float>(meta, p, begin, n); break;
    case Dtype::Double: update<double>(meta, p, begin, n); break;
    case Dtype::Half: update<at::Half>(meta, p, begin, n); break;
    case Dtype::BFloat16: update<at::BFloat16>(meta, p, begin, n); break;
  }
}

Dtype dtype_of(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return Dtype::Float;
    case at::kDouble: return Dtype::Double;
    case at::kHalf: return Dtype::Half;
    default: return Dtype::BFloat16;  // check_ema admits only the four floating types
  }
}

struct Pair {
  void* target;
  const void* source;
  int64_t n;
  Dtype dtype;
};

void launch_pairs(const std::vector<Pair>& pairs, double w, c10::DeviceIndex device,
                  cudaStream_t stream) {
  std::vector<int64_t> numel;
  numel.reserve(pairs.size());
  int64_t total = 0;
  for (const Pair& p : pairs) {
    numel.push_back(p.n);
    total += p.n;
  }
  const int64_t chunk = clip_chunk_size(total, resident_blocks(ema_kernel, kEmaBlock, device),
                                        kMinChunk, kMaxChunk, kEmaBlock);
  // The metadata struct is large (up to 32 KB): only the entries a launch uses are written.
  static thread_local EmaMeta meta;
  meta.chunk = chunk;
  meta.w = w;
  for (const ClipLaunch& launch : plan_clip_launches(numel, chunk, kMaxTensors, kMaxBlocks)) {
    for (size_t slot = 0; slot < launch.tensors.size(); ++slot) {
      const Pair& p = pairs[launch.tensors[slot]];
      meta.target[slot] = p.target;
      meta.source[slot] = p.source;
      meta.numel[slot] = p.n;
      meta.dtype[slot] = p.dtype;
    }
    const size_t blocks = launch.block_slot.size();
    for (size_t b = 0; b < blocks; ++b) {
      TORCH_CHECK(launch.block_chunk[b] <= INT32_MAX, "ema_: a tensor of ",
                  pairs[launch.tensors[launch.block_slot[b]]].n, " elements is too large");
      meta.block_to_tensor[b] = static_cast<uint16_t>(launch.block_slot[b]);
      meta.block_to_chunk[b] = static_cast<int32_t>(launch.block_chunk[b]);
    }
    // The kernel's parameters are copied at launch: `meta` may be refilled right after.
    ema_kernel<<<static_cast<unsigned>(blocks), kEmaBlock, 0, stream>>>(meta);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

void ema_cuda(at::TensorList target, at::TensorList source, double decay) {
  check_ema(target, source, decay);
  const c10::Device device = target[0].device();
  TORCH_CHECK(device.is_cuda(), "ema_: the CUDA kernel got target on ", device);
  const c10::cuda::CUDAGuard guard(device);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  std::vector<Pair> pairs;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (target, its copy) to write back after
  std::vector<Tensor> keep;                       // sources made dense, alive until launched
  for (size_t i = 0; i < target.size(); ++i) {
    const Tensor& t = target[i];
    if (t.numel() == 0) continue;
    Tensor tt = t, ss = source[i];
    if (!t.is_non_overlapping_and_dense()) {
      tt = t.contiguous();
      copies.emplace_back(t, tt);
    }
    if (!same_layout(ss, tt) || !ss.is_non_overlapping_and_dense()) {
      ss = in_layout_of(ss, tt);
      keep.push_back(ss);
    }
    pairs.push_back({tt.data_ptr(), ss.const_data_ptr(), tt.numel(), dtype_of(t.scalar_type())});
  }
  if (!pairs.empty()) launch_pairs(pairs, 1.0 - decay, device.index(), stream);
  for (auto& [t, tt] : copies) t.copy_(tt);
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) { m.impl("ema_", &cuda::ema_cuda); }

}  // namespace gankernels
