// Device helpers shared by the CUDA kernels in this folder: 128-bit packs, team/block sums,
// the "last block finishes" election, range walks with a vectorised body and scalar edges, and
// launch sizing. Host code here only ever queries attributes: nothing synchronises.
//
// Only c10/cuda headers are used (ATen/cuda/CUDAContext.h drags in cuSPARSE/cuBLAS headers).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "common.h"

namespace gankernels {
namespace cuda {

constexpr int kWarp = 32;
// Threads per block of every reduction / elementwise kernel here. 256 threads x 8 resident
// blocks fill an SM's 2048 thread slots on sm_80 and sm_90.
constexpr int kBlock = 256;
constexpr int kBlocksPerSm = 2048 / kBlock;

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

// Blocks that are resident at once at full occupancy: the useful upper bound of a grid-stride
// launch.
inline int64_t resident_blocks(c10::DeviceIndex device) {
  return static_cast<int64_t>(sm_count(device)) * kBlocksPerSm;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

__host__ __device__ inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

// A zeroed 32-bit counter for `last_block`, ordered on `stream`. cudaMemsetAsync is a copy
// engine operation, not a kernel launch, and is captured by CUDA graphs like a kernel.
inline unsigned* zeroed_counter(at::Tensor& holder, const at::Tensor& like,
                                cudaStream_t stream) {
  holder = at::empty({1}, like.options().dtype(at::kInt));
  C10_CUDA_CHECK(cudaMemsetAsync(holder.data_ptr(), 0, sizeof(int), stream));
  return reinterpret_cast<unsigned*>(holder.data_ptr<int>());
}

inline at::ScalarType acc_scalar_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// ---- device side --------------------------------------------------------------------------------

// Elements of T in one 16-byte (128-bit) load or store.
template <typename T>
struct Vec {
  static constexpr int size = 16 / static_cast<int>(sizeof(T));
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

// Math in the accumulation type (float or double) without relying on overload resolution.
__device__ __forceinline__ float d_exp(float x) { return expf(x); }
__device__ __forceinline__ double d_exp(double x) { return exp(x); }
__device__ __forceinline__ float d_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double d_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float d_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double d_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float d_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double d_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float d_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double d_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float d_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double d_abs(double x) { return fabs(x); }

template <typename T>
__device__ __forceinline__ T d_max(T a, T b) {
  // NaN in `a` propagates, as std::max(NaN, 0) and clamp_min do.
  return a < b ? b : a;
}

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

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

// After thread 0 wrote this block's partial result(s): true in every thread of the one block
// that finishes last. That block then sees every other block's partials (read them with
// __ldcg, bypassing L1). The classic threadfence reduction: deterministic, because the last
// block combines the partials in index order whichever block it is; no float atomics.
// Every thread must call it. `counter` starts at 0 (zeroed_counter); one use per launch.
__device__ __forceinline__ bool last_block(unsigned* counter) {
  __shared__ bool is_last;
  if (gridDim.x == 1) return true;
  if (threadIdx.x == 0) {
    __threadfence();  // publish this block's partials before counting it done
    const unsigned done = atomicAdd(counter, 1u);
    is_last = done == gridDim.x - 1;
  }
  __syncthreads();
  if (is_last) __threadfence();
  return is_last;
}

// Visits [start, end) of a flat array with `team` cooperating threads (this one is `lane`):
// `vec(k)` for the 16-byte aligned packs [k, k + V), `scalar(k)` for the unaligned head and the
// tail. `aligned` says the base pointers are 16-byte aligned, so element k of every array is
// aligned exactly when k % V == 0. 64-bit indices throughout.
template <int V, typename VecFn, typename ScalarFn>
__device__ __forceinline__ void for_range(int64_t start, int64_t end, int lane, int team,
                                          bool aligned, VecFn&& vec, ScalarFn&& scalar) {
  int64_t vbeg = start, vend = start;
  if (aligned) {
    vbeg = imin(end, (start + V - 1) / V * V);
    vend = vbeg + (end - vbeg) / V * V;
  }
  for (int64_t k = start + lane; k < vbeg; k += team) scalar(k);
#pragma unroll 4
  for (int64_t k = vbeg + static_cast<int64_t>(lane) * V; k < vend;
       k += static_cast<int64_t>(team) * V) {
    vec(k);
  }
  for (int64_t k = vend + lane; k < end; k += team) scalar(k);
}

// ---- per-sample reductions ----------------------------------------------------------------------
//
// A batch-major buffer holds B samples of N elements; sample i is [i * N, (i + 1) * N). Two
// shapes of work keep the GPU full:
//   * team mode (N small, many samples): a team of 1..32 lanes of a warp owns a whole sample,
//     so one block reduces many samples at once with warp shuffles only;
//   * split mode (N large, few samples): a sample is cut into P chunks, each reduced by one
//     block into a partial; the last block to finish (last_block) adds each sample's P
//     partials in order - the short second pass, in the same launch.
struct SamplePlan {
  int team;       // lanes per sample in team mode, or kBlock in split mode
  int64_t P;      // chunks per sample (1 in team mode)
  int64_t chunk;  // elements per chunk (a multiple of the pack size)
  int64_t grid;   // blocks to launch (grid-stride over the work)
  bool split() const { return team > kWarp; }
};

inline SamplePlan plan_samples(int64_t B, int64_t N, int vec, c10::DeviceIndex device) {
  const int64_t resident = resident_blocks(device);
  SamplePlan plan{};
  if (N <= static_cast<int64_t>(kWarp) * vec * 4) {
    // Two packs per lane or fewer: the smallest power-of-two team that covers the sample.
    int team = 1;
    while (team < kWarp && static_cast<int64_t>(team) * vec * 2 < N) team *= 2;
    plan.team = team;
    plan.P = 1;
    plan.chunk = N;
    plan.grid = std::max<int64_t>(1, std::min(ceil_div(B, kBlock / team), resident));
    return plan;
  }
  // Chunks of at least two packs per thread, and enough of them for ~2 waves of blocks.
  const int64_t min_chunk = static_cast<int64_t>(kBlock) * vec * 2;
  int64_t P = std::max<int64_t>(
      1, std::min(ceil_div(N, min_chunk), ceil_div(2 * resident, B)));
  int64_t chunk = ceil_div(ceil_div(N, P), vec) * vec;
  P = ceil_div(N, chunk);  // no empty chunks
  plan.team = kBlock;
  plan.P = P;
  plan.chunk = chunk;
  plan.grid = std::max<int64_t>(1, std::min(B * P, resident));
  return plan;
}

}  // namespace cuda
}  // namespace gankernels
