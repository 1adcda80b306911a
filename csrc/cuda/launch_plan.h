// The index, partition and chunk logic of the CUDA kernels, as plain functions that compile for
// the host and the device alike: the kernels call them, and cpp_test/test_launch_plan.cpp runs
// them on the CPU over edge cases (every element visited exactly once, every 128-bit access
// aligned), so that a logic error here fails CI on a machine without a GPU.
//
// Nothing here includes a CUDA header: under a host compiler C10_HOST_DEVICE is empty.
#pragma once

#include <c10/macros/Macros.h>

#include <cstddef>
#include <cstdint>
#include <vector>

// Loop-unrolling pragmas for nvcc; nothing for a host compiler.
#ifdef __CUDACC__
#define GK_UNROLL _Pragma("unroll")
#define GK_NO_UNROLL _Pragma("unroll 1")
#else
#define GK_UNROLL
#define GK_NO_UNROLL
#endif

namespace gankernels {
namespace cuda {

constexpr int kWarp = 32;
// Threads per block of every per-sample and elementwise kernel here.
constexpr int kBlock = 256;

C10_HOST_DEVICE C10_ALWAYS_INLINE int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
C10_HOST_DEVICE C10_ALWAYS_INLINE int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
C10_HOST_DEVICE C10_ALWAYS_INLINE int64_t imax(int64_t a, int64_t b) { return a < b ? b : a; }

// ---- 128-bit packs --------------------------------------------------------------------------------

// Elements of a `size`-byte type in one 16-byte (128-bit) load or store.
C10_HOST_DEVICE C10_ALWAYS_INLINE constexpr int pack_width(int size) { return 16 / size; }

// The pack phase of an array of `size`-byte elements at `address`: element k lies on a 16-byte
// boundary exactly when (phase + k) % pack_width(size) == 0. -1 when the address is not even a
// multiple of the element size (then no element is aligned).
C10_HOST_DEVICE C10_ALWAYS_INLINE int pack_phase(uintptr_t address, int size) {
  const int rem = static_cast<int>(address & 15);
  return rem % size == 0 ? rem / size : -1;
}

template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE int phase_of(const T* p) {
  return pack_phase(reinterpret_cast<uintptr_t>(p), static_cast<int>(sizeof(T)));
}

// The phase shared by two or three arrays walked with the same index, or -1 when they differ:
// one index can only be aligned in all of them if their phases agree.
C10_HOST_DEVICE C10_ALWAYS_INLINE int common_phase(int a, int b) { return a == b ? a : -1; }
C10_HOST_DEVICE C10_ALWAYS_INLINE int common_phase(int a, int b, int c) {
  return common_phase(common_phase(a, b), c);
}

// [start, end) cut into a scalar head [start, vbeg), whole aligned packs [vbeg, vend) and a scalar
// tail [vend, end). With phase -1 everything is tail.
struct PackSplit {
  int64_t vbeg;
  int64_t vend;
};

C10_HOST_DEVICE C10_ALWAYS_INLINE PackSplit pack_split(int64_t start, int64_t end, int V,
                                                       int phase) {
  if (phase < 0 || start >= end) return {start, start};
  const int64_t head = (V - (phase + start) % V) % V;
  const int64_t vbeg = imin(end, start + head);
  return {vbeg, vbeg + (end - vbeg) / V * V};
}

// Visits [start, end) with `team` cooperating threads, this one being `lane`: `scalar(k)` for the
// head and the tail, `vec(k)` for the packs [k, k + V), `Unroll` packs per trip (so that a
// reduction has that many 128-bit loads in flight). 64-bit indices throughout.
#ifdef __CUDACC__
#pragma nv_exec_check_disable  // host-instantiated by the tests with host lambdas
#endif
template <int V, int Unroll = 4, typename VecFn, typename ScalarFn>
C10_HOST_DEVICE
C10_ALWAYS_INLINE void for_range(int64_t start, int64_t end, int64_t lane, int64_t team, int phase,
                                 VecFn&& vec, ScalarFn&& scalar) {
  // Unrolled by hand, and no compiler unrolling anywhere: unrolling a loop with a runtime
  // stride computes its trip count with a 64-bit division, an out-of-line call that costs a
  // stack frame and spills.
  const PackSplit s = pack_split(start, end, V, phase);
  const int64_t step = team * V;
  int64_t k = start + lane;
  GK_NO_UNROLL
  for (; k < s.vbeg; k += team) scalar(k);
  k = s.vbeg + lane * V;
  GK_NO_UNROLL
  for (; k + (Unroll - 1) * step < s.vend; k += Unroll * step) {
    GK_UNROLL
    for (int u = 0; u < Unroll; ++u) vec(k + u * step);
  }
  GK_NO_UNROLL
  for (; k < s.vend; k += step) vec(k);
  GK_NO_UNROLL
  for (k = s.vend + lane; k < end; k += team) scalar(k);
}

// n / d for a fixed divisor d >= 1 and any n < 2^63, as a multiply-high and shifts (Granlund and
// Montgomery's round-up method): the kernels that need the sample k / N of an element avoid the
// 64-bit division subroutine, a call whose saved registers spill to the stack.
struct Divider {
  uint64_t d = 1;
  uint64_t magic = 0;
  int shift = 0;  // ceil(log2(d))

  Divider() = default;
  explicit Divider(int64_t divisor) : d(static_cast<uint64_t>(divisor)) {
    while (shift < 64 && (uint64_t{1} << shift) < d) ++shift;
    // floor(2^64 * (2^shift - d) / d) + 1, in 128-bit arithmetic.
    const unsigned __int128 two_l = static_cast<unsigned __int128>(1) << shift;
    magic = static_cast<uint64_t>(((two_l - d) << 64) / d) + 1;
  }

  C10_HOST_DEVICE C10_ALWAYS_INLINE int64_t div(int64_t n) const {
    if (d == 1) return n;
    const uint64_t u = static_cast<uint64_t>(n);
#ifdef __CUDA_ARCH__
    const uint64_t t = __umul64hi(magic, u);
#else
    const uint64_t t = static_cast<uint64_t>((static_cast<unsigned __int128>(magic) * u) >> 64);
#endif
    return static_cast<int64_t>((t + ((u - t) >> 1)) >> (shift - 1));
  }
};

// The sample of each element of a pack in a batch-major buffer of samples of N elements:
// start at element k, then step() once per element; step() says when the sample changed, so a
// kernel re-reads its per-sample value only on a pack that straddles a boundary.
struct SampleCursor {
  int64_t i;  // the current element's sample
  int64_t r;  // elements of sample i before the next step's

  C10_HOST_DEVICE C10_ALWAYS_INLINE SampleCursor(int64_t k, const Divider& N)
      : i(N.div(k)), r(k - i * static_cast<int64_t>(N.d)) {}

  C10_HOST_DEVICE C10_ALWAYS_INLINE bool step(const Divider& N) {
    const bool crossed = r == static_cast<int64_t>(N.d);
    if (crossed) {
      ++i;
      r = 0;
    }
    ++r;
    return crossed;
  }
};

// ---- per-sample reductions ----------------------------------------------------------------------
//
// A batch-major buffer holds B samples of N elements; sample i is [i * N, (i + 1) * N). Two
// shapes of work keep the GPU full:
//   * team mode (small samples, or more samples than warps): a team of 1..32 lanes of a warp
//     owns a whole sample, so one block reduces many samples at once with warp shuffles only;
//   * split mode (few large samples): a sample is cut into P chunks, each reduced by one block
//     into a partial; the block that finishes a sample's last chunk adds its P partials in order.
struct SamplePlan {
  int team;       // lanes per sample in team mode, or kBlock in split mode
  int64_t P;      // chunks per sample (1 in team mode)
  int64_t chunk;  // elements per chunk (a multiple of the pack width)
  int64_t grid;   // blocks to launch (grid-stride over the work)
  bool split() const { return team > kWarp; }
};

// `resident`: blocks of the kernel resident at once on the whole GPU (occupancy x SMs).
inline SamplePlan plan_samples(int64_t B, int64_t N, int vec, int64_t resident) {
  resident = imax(resident, 1);
  SamplePlan plan{};
  const bool small = N <= static_cast<int64_t>(kWarp) * vec * 4;
  // More samples than resident warps: a warp per sample keeps every SM busy with no partials.
  const bool many = B >= resident * (kBlock / kWarp);
  if (small || many) {
    // The smallest power-of-two team with at most two packs per lane, or a whole warp.
    int team = 1;
    while (team < kWarp && static_cast<int64_t>(team) * vec * 2 < N) team *= 2;
    plan.team = team;
    plan.P = 1;
    plan.chunk = N;
    plan.grid = imax(1, imin(ceil_div(B, kBlock / team), resident));
    return plan;
  }
  // Chunks of at least two packs per thread, and enough of them for ~2 waves of blocks.
  const int64_t min_chunk = static_cast<int64_t>(kBlock) * vec * 2;
  int64_t P = imax(1, imin(ceil_div(N, min_chunk), ceil_div(2 * resident, B)));
  const int64_t chunk = ceil_div(ceil_div(N, P), vec) * vec;
  P = ceil_div(N, chunk);  // no empty chunks
  plan.team = kBlock;
  plan.P = P;
  plan.chunk = chunk;
  plan.grid = imax(1, imin(B * P, resident));
  return plan;
}

// Team mode: the samples a thread visits are first, first + stride, ... while the loop index of
// its warp's first team, warp_first + j * stride, is below B - so that all 32 lanes of a warp
// run the same iterations and reach every shuffle, lanes past B contributing zeros.
struct TeamWalk {
  int64_t first;       // this thread's team's first sample
  int64_t warp_first;  // the first sample of the first team of this thread's warp
  int64_t stride;      // teams in the grid
  int lane;            // this thread's lane in its team
};

C10_HOST_DEVICE C10_ALWAYS_INLINE TeamWalk team_walk(int64_t block, int64_t grid, int thread,
                                                     int team) {
  const int64_t teams_per_block = kBlock / team;
  return {block * teams_per_block + thread / team,
          block * teams_per_block + (thread / kWarp) * (kWarp / team), grid * teams_per_block,
          thread % team};
}

// Split mode: work unit u is chunk p of sample i, the elements [start, end).
struct SplitChunk {
  int64_t i, p, start, end;
};

C10_HOST_DEVICE C10_ALWAYS_INLINE SplitChunk split_chunk(int64_t u, const Divider& P, int64_t chunk,
                                                         int64_t N) {
  const int64_t i = P.div(u), p = u - i * static_cast<int64_t>(P.d);
  const int64_t start = i * N + p * chunk;
  return {i, p, start, imin(start + chunk, (i + 1) * N)};
}

// ---- clip_: multi-tensor launches ---------------------------------------------------------------
//
// Each block of a launch clamps one chunk of one tensor. A launch's argument struct holds at most
// `max_tensors` tensor slots and `max_blocks` blocks; when either is full the launch is cut and a
// tensor that is not finished is carried into slot 0 of the next launch.

// Elements per block for a list of `total` elements on a GPU with `resident` resident blocks:
// at least one block for every resident slot (a DCGAN-sized list must reach every SM), but no
// chunk shorter than `min_chunk` (a block's fixed cost) or longer than `max_chunk`. A multiple
// of `multiple` (a pack of every dtype), so chunks of an aligned tensor start aligned; rounded
// down, so the block count does not fall below `resident`.
inline int64_t clip_chunk_size(int64_t total, int64_t resident, int64_t min_chunk,
                               int64_t max_chunk, int64_t multiple) {
  const int64_t even = ceil_div(imax(total, 1), imax(resident, 1)) / multiple * multiple;
  return imin(max_chunk, imax(min_chunk, even));
}

struct ClipLaunch {
  std::vector<int> tensors;          // slot -> index into the list of segments
  std::vector<int> block_slot;       // block b clamps the tensor in slot block_slot[b] ...
  std::vector<int64_t> block_chunk;  // ... from element block_chunk[b] * chunk
};

// The launches that clamp tensors of sizes `numel` in chunks of `chunk` elements. An empty
// tensor takes no slot and no block.
inline std::vector<ClipLaunch> plan_clip_launches(const std::vector<int64_t>& numel, int64_t chunk,
                                                  int max_tensors, int max_blocks) {
  std::vector<ClipLaunch> launches;
  ClipLaunch cur;
  size_t last_nonempty = numel.size();
  for (size_t t = 0; t < numel.size(); ++t) {
    if (numel[t] > 0) last_nonempty = t;
  }
  for (size_t t = 0; t < numel.size(); ++t) {
    if (numel[t] == 0) continue;
    cur.tensors.push_back(static_cast<int>(t));
    const int64_t chunks = ceil_div(numel[t], chunk);
    for (int64_t c = 0; c < chunks; ++c) {
      cur.block_slot.push_back(static_cast<int>(cur.tensors.size()) - 1);
      cur.block_chunk.push_back(c);
      const bool tensor_done = c == chunks - 1;
      const bool tensors_full = static_cast<int>(cur.tensors.size()) == max_tensors;
      const bool blocks_full = static_cast<int>(cur.block_slot.size()) == max_blocks;
      const bool last = tensor_done && t == last_nonempty;
      if (!((tensors_full && tensor_done) || blocks_full || last)) continue;
      launches.push_back(std::move(cur));
      cur = ClipLaunch();
      if (!tensor_done) cur.tensors.push_back(static_cast<int>(t));  // carried over
    }
  }
  return launches;
}

}  // namespace cuda
}  // namespace gankernels
