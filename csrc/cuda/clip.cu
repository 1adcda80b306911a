// CUDA kernel of clip_ (math.md section 4): w <- clamp(w, -c, c) in place for a whole list of
// tensors, returning the count of elements left at +-c.
//
// The multi-tensor pattern (as apex / PyTorch's MultiTensorApply): tensor addresses, sizes and
// bounds are packed into a kernel-argument struct (under the classic 4 KB parameter limit),
// each block clamps one chunk of kChunk elements of one tensor; when the struct is full of
// tensors or blocks, it is launched and the half-finished tensor is carried over into the next
// launch. A DCGAN critic's parameter list is one launch. Empty tensors are skipped.
//
// The clamp works on bit patterns, so float64/32/16 and bfloat16 tensors - mixed in one list -
// share one launch. With m = bits & ~sign and rc = the bits of c rounded to the tensor's dtype
// (as torch rounds a clamp bound):
//   rc <= m <= inf  ->  at or beyond +-c (infinities included): write sign | rc, count it;
//   m < rc          ->  inside (-c, c): unchanged (and not written back);
//   m > inf         ->  NaN: unchanged, as torch.clamp propagates NaN.
// That is exactly torch.clamp(w, -c, c) and the count of |w| == c afterwards (the CPU kernel,
// csrc/cpu/clip.cpp, uses the same rule). A 16-byte pack is stored only when one of its words
// changed, so a mostly unsaturated critic costs little more than a read.
//
// The count: each block adds its integer total to one int64 with an integer atomic, so the
// result is exact and independent of the order (deterministic). One 8-byte memset zeroes it.
// Non-dense tensors (rare: parameters are contiguous) go through one contiguous copy each.
#include <ATen/MemoryOverlap.h>
#include <torch/library.h>

#include <cstring>
#include <vector>

#include "checks.h"
#include "clip_bound.h"
#include "utils.cuh"

namespace gankernels {
namespace cuda {
namespace {

using at::Tensor;

constexpr int kClipBlock = 512;
constexpr int64_t kChunk = 65536;  // elements per block; a multiple of every pack size
constexpr int kMaxTensors = 64;
constexpr int kMaxBlocks = 320;

// The kernel-argument metadata of one launch.
struct ClipMeta {
  void* addr[kMaxTensors];               // data of tensor t
  int64_t numel[kMaxTensors];            // its element count
  uint64_t rc[kMaxTensors];              // bits of c rounded to its dtype
  uint64_t inf[kMaxTensors];             // bits of +inf in its dtype
  uint8_t width[kMaxTensors];            // bytes per element: 2, 4 or 8
  uint8_t block_to_tensor[kMaxBlocks];   // block b clamps tensor block_to_tensor[b] ...
  int32_t block_to_chunk[kMaxBlocks];    // ... from element block_to_chunk[b] * kChunk
};
// Kernel parameters: the metadata plus the count pointer, under 4 KB.
static_assert(sizeof(ClipMeta) + sizeof(void*) <= 4096, "clip_ metadata exceeds 4 KB");

template <typename U>
__device__ __forceinline__ bool clamp_word(U& u, U rc, U inf) {
  constexpr U kMag = static_cast<U>(~U(0) >> 1);
  constexpr U kSign = static_cast<U>(~kMag);
  const U m = static_cast<U>(u & kMag);
  const bool sat = (m >= rc) & (m <= inf);
  if (sat) u = static_cast<U>((u & kSign) | rc);
  return sat;
}

// Clamps n words at p (this block's chunk) and returns this thread's count.
template <typename U>
__device__ __forceinline__ int clamp_chunk(U* p, int64_t n, U rc, U inf) {
  constexpr int V = Vec<U>::size;
  int count = 0;
  for_range<V>(
      0, n, threadIdx.x, kClipBlock, aligned16(p),
      [&](int64_t k) {
        Pack<U> x = load_pack(p + k);
        bool changed = false;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const U before = x.v[j];
          count += clamp_word(x.v[j], rc, inf);
          changed |= x.v[j] != before;
        }
        if (changed) store_pack(p + k, x);
      },
      [&](int64_t k) {
        U u = p[k];
        const U before = u;
        count += clamp_word(u, rc, inf);
        if (u != before) p[k] = u;
      });
  return count;
}

__global__ void __launch_bounds__(kClipBlock)
    clip_kernel(ClipMeta meta, unsigned long long* __restrict__ count) {
  const int t = meta.block_to_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(meta.block_to_chunk[blockIdx.x]) * kChunk;
  const int64_t n = imin(kChunk, meta.numel[t] - begin);
  int local = 0;
  switch (meta.width[t]) {
    case 2:
      local = clamp_chunk(static_cast<uint16_t*>(meta.addr[t]) + begin, n,
                          static_cast<uint16_t>(meta.rc[t]), static_cast<uint16_t>(meta.inf[t]));
      break;
    case 4:
      local = clamp_chunk(static_cast<uint32_t*>(meta.addr[t]) + begin, n,
                          static_cast<uint32_t>(meta.rc[t]), static_cast<uint32_t>(meta.inf[t]));
      break;
    default:
      local = clamp_chunk(static_cast<uint64_t*>(meta.addr[t]) + begin, n, meta.rc[t],
                          meta.inf[t]);
  }
  const int total = block_sum<kClipBlock>(local);
  // Integer addition is associative: the total is the same in any order.
  if (threadIdx.x == 0 && total != 0) atomicAdd(count, static_cast<unsigned long long>(total));
}

// One dense tensor to clamp: its memory as words, and c for its dtype.
struct Segment : ClipBound {
  void* data;
  int64_t n;
};

Segment segment_of(const Tensor& p, double c) {
  return {clip_bound(p.scalar_type(), c), p.data_ptr(), p.numel()};
}

void launch_segments(const std::vector<Segment>& segments, unsigned long long* count,
                     cudaStream_t stream) {
  ClipMeta meta;
  std::memset(&meta, 0, sizeof(meta));
  int n_tensors = 0, n_blocks = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    meta.addr[n_tensors] = s.data;
    meta.numel[n_tensors] = s.n;
    meta.rc[n_tensors] = s.rc;
    meta.inf[n_tensors] = s.inf;
    meta.width[n_tensors] = static_cast<uint8_t>(s.width);
    ++n_tensors;
    const int64_t chunks = ceil_div(s.n, kChunk);
    TORCH_CHECK(chunks <= INT32_MAX, "clip_: a tensor of ", s.n, " elements is too large");
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      meta.block_to_tensor[n_blocks] = static_cast<uint8_t>(n_tensors - 1);
      meta.block_to_chunk[n_blocks] = static_cast<int32_t>(chunk);
      ++n_blocks;
      const bool tensor_done = chunk == chunks - 1;
      const bool tensors_full = n_tensors == kMaxTensors && tensor_done;
      const bool blocks_full = n_blocks == kMaxBlocks;
      const bool last = tensor_done && i + 1 == segments.size();
      if (!(tensors_full || blocks_full || last)) continue;
      // The kernel's parameters are copied at launch: `meta` may be refilled right after.
      clip_kernel<<<n_blocks, kClipBlock, 0, stream>>>(meta, count);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      n_blocks = 0;
      if (tensor_done) {
        n_tensors = 0;
      } else {
        // Carry the half-finished tensor into slot 0 of the next launch.
        meta.addr[0] = meta.addr[n_tensors - 1];
        meta.numel[0] = meta.numel[n_tensors - 1];
        meta.rc[0] = meta.rc[n_tensors - 1];
        meta.inf[0] = meta.inf[n_tensors - 1];
        meta.width[0] = meta.width[n_tensors - 1];
        n_tensors = 1;
      }
    }
  }
}

Tensor clip_cuda(at::TensorList params, double c) {
  constexpr const char* op = "clip_";
  check_clip_bound(c, params.size());
  const c10::Device device = params[0].device();

  // Validate everything before writing anything: a bad tensor must not leave the list half
  // clipped.
  std::vector<size_t> dense, strided;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    check_clip_param(p, i, device);
    if (p.numel() == 0) continue;
    (p.is_non_overlapping_and_dense() ? dense : strided).push_back(i);
  }
  TORCH_CHECK(device.is_cuda(), op, ": the CUDA kernel got params on ", device);

  const c10::cuda::CUDAGuard guard(device);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  Tensor count = at::empty({}, params[0].options().dtype(at::kLong));
  C10_CUDA_CHECK(cudaMemsetAsync(count.data_ptr(), 0, sizeof(int64_t), stream));

  std::vector<Segment> segments;
  std::vector<Tensor> copies;  // contiguous copies of the strided tensors, written back after
  segments.reserve(dense.size() + strided.size());
  for (size_t i : dense) segments.push_back(segment_of(params[i], c));
  for (size_t i : strided) {
    copies.push_back(params[i].contiguous());
    segments.push_back(segment_of(copies.back(), c));
  }
  if (!segments.empty()) {
    launch_segments(segments, reinterpret_cast<unsigned long long*>(count.data_ptr<int64_t>()),
                    stream);
  }
  for (size_t k = 0; k < strided.size(); ++k) params[strided[k]].copy_(copies[k]);
  return count;
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) { m.impl("clip_", &cuda::clip_cuda); }

}  // namespace gankernels
