// Device helpers shared by the CUDA kernels in this folder: 128-bit packs, team/block sums, the
// "last block finishes" election, and launch sizing from the occupancy API. The index and
// partition logic they use is in launch_plan.h, where host tests reach it. Host code here only
// ever queries attributes: nothing synchronises.
//
// Only c10/cuda headers are used (ATen/cuda/CUDAContext.h drags in cuSPARSE/cuBLAS headers).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <type_traits>
#include <utility>

#include "launch_plan.h"
#include "layout.h"
#include "opmath.h"

namespace gankernels {
namespace cuda {

// ---- host side ----------------------------------------------------------------------------------

// Streaming multiprocessors of `device`, cached: cudaDeviceGetAttribute does not synchronise,
// but it is still a driver call we do not want on every op.
inline int sm_count(c10::DeviceIndex device) {
  static std::atomic<int> cache[64] = {};
  const int slot = static_cast<int>(device) & 63;
  int n = cache[slot].load(std::memory_order_relaxed);
  if (n == 0) {
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    cache[slot].store(n, std::memory_order_relaxed);
  }
  return n;
}

// Blocks of `kernel` (launched with `block` threads, no dynamic shared memory) resident at once
// on the whole GPU: the useful upper bound of a grid-stride launch. From the occupancy API, so
// it follows each kernel's register count (a gp backward block of 256 threads fits 4 times per
// SM, not the 8 that the thread count alone would allow); cached per kernel and device.
template <typename Kernel>
int64_t resident_blocks(Kernel kernel, int block, c10::DeviceIndex device) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, int64_t> cache;
  const auto key = std::make_pair(reinterpret_cast<const void*>(kernel), static_cast<int>(device));
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, block, 0));
  const int64_t resident = static_cast<int64_t>(std::max(per_sm, 1)) * sm_count(device);
  cache.emplace(key, resident);
  return resident;
}

// The grid of an elementwise grid-stride kernel over `numel` elements in packs of `vec`: a pack
// per thread, at most the resident blocks.
template <typename Kernel>
int64_t elementwise_grid(Kernel kernel, int64_t numel, int vec, c10::DeviceIndex device) {
  return std::max<int64_t>(
      1, std::min(ceil_div(ceil_div(numel, vec), kBlock), resident_blocks(kernel, kBlock, device)));
}

// A zeroed array of `n` 32-bit counters for `last_block`, ordered on `stream`. cudaMemsetAsync
// is a copy engine operation, not a kernel launch, and is captured by CUDA graphs like a kernel.
inline unsigned* zeroed_counters(at::Tensor& holder, int64_t n, const at::Tensor& like,
                                 cudaStream_t stream) {
  holder = at::empty({n}, like.options().dtype(at::kInt));
  C10_CUDA_CHECK(cudaMemsetAsync(holder.data_ptr(), 0, n * sizeof(int), stream));
  return reinterpret_cast<unsigned*>(holder.data_ptr<int>());
}

// ---- device side --------------------------------------------------------------------------------

// Elements of T in one 16-byte (128-bit) load or store.
template <typename T>
struct Vec {
  static constexpr int size = pack_width(static_cast<int>(sizeof(T)));
};

template <typename T>
struct alignas(16) Pack {
  T v[Vec<T>::size];
};

template <typename T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T>*>(p);
}

template <typename T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T>& x) {
  *reinterpret_cast<Pack<T>*>(p) = x;
}

__device__ __forceinline__ float d_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double d_sqrt(double x) { return sqrt(x); }

template <typename T>
__device__ __forceinline__ T d_max(T a, T b) {
  // NaN in `a` propagates, as std::max(NaN, 0) and clamp_min do.
  return a < b ? b : a;
}

// Sum over the `team` lanes (a power of two <= 32) of each aligned group of a warp. Every lane
// of the warp must call it. XOR butterflies give every lane of a team the same bits.
template <typename T>
__device__ __forceinline__ T team_sum(T v, int team) {
  for (int offset = team >> 1; offset > 0; offset >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  return team_sum(v, kWarp);
}

// Sum over the block, in a fixed order (deterministic). Every thread must call it; the result
// is valid in every thread. Safe to call repeatedly (it syncs before reusing its scratch).
template <int BLOCK, typename T>
__device__ __forceinline__ T block_sum(T v) {
  static_assert(BLOCK % kWarp == 0 && BLOCK <= kWarp * kWarp, "block size");
  __shared__ T warp_sums[BLOCK / kWarp];
  __shared__ T total;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // a previous call may still be reading `warp_sums` / `total`
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < BLOCK / kWarp ? warp_sums[lane] : T(0);
    w = warp_sum(w);
    if (lane == 0) total = w;
  }
  __syncthreads();
  return total;
}

// After thread 0 wrote this block's partial result(s) for a group of `expected` blocks (the chunks
// of one sample, or the whole grid): true in every thread of the group's block that arrives
// last at `counter`. That block then sees every other block's partials (read them with __ldcg,
// bypassing L1). The classic threadfence reduction: deterministic, because the last block
// combines the partials in index order whichever block it is; no float atomics. Every thread
// must call it; `counter` starts at 0 (zeroed_counters) and serves one group once.
__device__ __forceinline__ bool last_arrival(unsigned* counter, unsigned expected) {
  __shared__ bool is_last;
  if (expected == 1) return true;
  if (threadIdx.x == 0) {
    __threadfence();  // publish this block's partials before counting it done
    const unsigned done = atomicAdd(counter, 1u);
    is_last = done == expected - 1;
  }
  __syncthreads();
  if (is_last) __threadfence();
  return is_last;
}

__device__ __forceinline__ bool last_block(unsigned* counter) {
  return last_arrival(counter, gridDim.x);
}

// Split mode with n_chunks > 1 chunks a sample: `sum` is this block's (block-reduced) total of
// chunk u, which belongs to sample i. True in every thread of the block that finishes the
// sample's last chunk, with `sum` replaced by the sample's total, its partials added in chunk
// order (so deterministic); false in the others. partials: [B * n_chunks]; counters[i] starts
// at 0.
template <typename T>
__device__ __forceinline__ bool finish_sample(T& sum, T* partials, unsigned* counters, int64_t u,
                                              int64_t i, int64_t n_chunks) {
  if (threadIdx.x == 0) partials[u] = sum;
  if (!last_arrival(counters + i, static_cast<unsigned>(n_chunks))) return false;
  T total = 0;
#pragma unroll 1
  for (int64_t q = threadIdx.x; q < n_chunks; q += kBlock) {
    total += __ldcg(partials + i * n_chunks + q);
  }
  sum = block_sum<kBlock>(total);
  return true;
}

// 1 / x. float: the hardware reciprocal (within 1 ulp, subnormals included), without the IEEE
// division's out-of-line slow path, whose call needs a stack frame and made the float32
// norm_penalty backward spill. double keeps the exact division.
__device__ __forceinline__ float reciprocal(float x) {
  float r;
  asm("rcp.approx.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ double reciprocal(double x) { return 1.0 / x; }

}  // namespace cuda
}  // namespace gankernels
