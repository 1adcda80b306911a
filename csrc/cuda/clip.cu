// CUDA kernel of clip_ (docs/math.md section 4): w <- clamp(w, -c, c) in place for a whole list of
// tensors, returning the count of elements left at +-c.
//
// The multi-tensor pattern (as apex / PyTorch's MultiTensorApply): tensor addresses, sizes and
// bounds are packed into the kernel-argument struct, each block clamps one chunk of one tensor;
// when the struct is full of tensors or blocks, it is launched and the half-finished tensor is
// carried over into the next launch (launch_plan.h plan_clip_launches, tested on the host).
// With CUDA 12.1 or later the struct uses the larger kernel-parameter space (32,764 bytes), so
// a long list takes a few launches, not dozens. The chunk size follows the list's total size
// and the kernel's occupancy, so that a DCGAN-sized list (~3 M elements) still gives every SM
// its blocks. Empty tensors are skipped.
//
// The clamp works on bit patterns (clip_bound.h clamp_bits, shared with the CPU kernel), so
// float64/32/16 and bfloat16 tensors - mixed in one list - share one launch. That is exactly
// torch.clamp(w, -c, c) (NaN kept) and the count of |w| == c afterwards. Each chunk is walked in
// 128-bit packs after a short scalar head that reaches a 16-byte boundary, so a tensor whose
// base is not aligned still vectorises; a pack is stored only when one of its words changed,
// so a mostly unsaturated critic costs little more than a read.
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
// Chunk sizes: at least a 16-byte pack per thread, at most 64 Ki elements; a multiple of a
// whole block's worth of elements, which is a multiple of every pack width.
constexpr int64_t kMinChunk = 4 * kClipBlock;
constexpr int64_t kMaxChunk = 65536;

#if defined(CUDART_VERSION) && CUDART_VERSION >= 12010
// CUDA 12.1+ on Volta and later: kernel parameters up to 32,764 bytes.
constexpr size_t kParamBytes = 32764;
constexpr int kMaxTensors = 384;
constexpr int kMaxBlocks = 2560;
#else
constexpr size_t kParamBytes = 4096;
constexpr int kMaxTensors = 48;
constexpr int kMaxBlocks = 400;
#endif

// The kernel-argument metadata of one launch.
struct ClipMeta {
  void* addr[kMaxTensors];               // data of tensor t
  int64_t numel[kMaxTensors];            // its element count
  uint64_t rc[kMaxTensors];              // bits of c rounded to its dtype
  uint64_t inf[kMaxTensors];             // bits of +inf in its dtype
  int64_t chunk;                         // elements per block
  uint16_t block_to_tensor[kMaxBlocks];  // block b clamps tensor block_to_tensor[b] ...
  int32_t block_to_chunk[kMaxBlocks];    // ... from element block_to_chunk[b] * chunk
  uint8_t width[kMaxTensors];            // bytes per element: 2, 4 or 8
};
// Kernel parameters: the metadata plus the count pointer.
static_assert(sizeof(ClipMeta) + sizeof(void*) <= kParamBytes, "clip_ metadata too large");
static_assert(kMaxTensors <= 65536, "block_to_tensor is 16-bit");

// Clamps the n words at p (this block's chunk) and returns this thread's count.
template <typename U>
__device__ __forceinline__ int clamp_chunk(U* p, int64_t n, U rc, U inf) {
  constexpr int V = Vec<U>::size;
  int count = 0;
  for_range<V>(
      0, n, threadIdx.x, kClipBlock, phase_of(p),
      [&](int64_t k) {
        Pack<U> x = load_pack(p + k);
        bool changed = false;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const U before = x.v[j];
          count += clamp_bits(x.v[j], rc, inf);
          changed |= x.v[j] != before;
        }
        if (changed) store_pack(p + k, x);
      },
      [&](int64_t k) {
        U u = p[k];
        const U before = u;
        count += clamp_bits(u, rc, inf);
        if (u != before) p[k] = u;
      });
  return count;
}

// Two blocks per SM: at the three that 512 threads would allow, ptxas capped the registers at 40
// and spilled.
__global__ void __launch_bounds__(kClipBlock, 2)
    clip_kernel(const ClipMeta meta, unsigned long long* __restrict__ count) {
  const int t = meta.block_to_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(meta.block_to_chunk[blockIdx.x]) * meta.chunk;
  const int64_t n = imin(meta.chunk, meta.numel[t] - begin);
  const int width = meta.width[t];
  char* const data = static_cast<char*>(meta.addr[t]) + begin * width;
  const uint64_t rc = meta.rc[t], inf = meta.inf[t];
  int local = 0;
  if (width == 2) {
    local = clamp_chunk(reinterpret_cast<uint16_t*>(data), n, static_cast<uint16_t>(rc),
                        static_cast<uint16_t>(inf));
  } else if (width == 4) {
    local = clamp_chunk(reinterpret_cast<uint32_t*>(data), n, static_cast<uint32_t>(rc),
                        static_cast<uint32_t>(inf));
  } else {
    local = clamp_chunk(reinterpret_cast<uint64_t*>(data), n, rc, inf);
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
                     c10::DeviceIndex device, cudaStream_t stream) {
  std::vector<int64_t> numel;
  numel.reserve(segments.size());
  int64_t total = 0;
  for (const Segment& s : segments) {
    numel.push_back(s.n);
    total += s.n;
  }
  const int64_t chunk = clip_chunk_size(total, resident_blocks(clip_kernel, kClipBlock, device),
                                        kMinChunk, kMaxChunk, kClipBlock);
  // The metadata struct is large (up to 32 KB): only the entries a launch uses are written.
  static thread_local ClipMeta meta;
  meta.chunk = chunk;
  for (const ClipLaunch& launch : plan_clip_launches(numel, chunk, kMaxTensors, kMaxBlocks)) {
    for (size_t slot = 0; slot < launch.tensors.size(); ++slot) {
      const Segment& s = segments[launch.tensors[slot]];
      meta.addr[slot] = s.data;
      meta.numel[slot] = s.n;
      meta.rc[slot] = s.rc;
      meta.inf[slot] = s.inf;
      meta.width[slot] = static_cast<uint8_t>(s.width);
    }
    const size_t blocks = launch.block_slot.size();
    for (size_t b = 0; b < blocks; ++b) {
      TORCH_CHECK(launch.block_chunk[b] <= INT32_MAX, "clip_: a tensor of ",
                  segments[launch.tensors[launch.block_slot[b]]].n, " elements is too large");
      meta.block_to_tensor[b] = static_cast<uint16_t>(launch.block_slot[b]);
      meta.block_to_chunk[b] = static_cast<int32_t>(launch.block_chunk[b]);
    }
    // The kernel's parameters are copied at launch: `meta` may be refilled right after.
    clip_kernel<<<static_cast<unsigned>(blocks), kClipBlock, 0, stream>>>(meta, count);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
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
                    device.index(), stream);
  }
  for (size_t k = 0; k < strided.size(); ++k) params[strided[k]].copy_(copies[k]);
  return count;
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) { m.impl("clip_", &cuda::clip_cuda); }

}  // namespace gankernels
