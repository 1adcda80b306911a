// How the CPU kernels split their work: per-ISA clones, fixed reduction blocks (results do not
// depend on the thread count), interleaved lane sums, and walks over batch-major buffers cut at
// sample boundaries. Host code only.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace gankernels {
namespace cpu {

// Marks a CPU kernel to be compiled once per instruction set and chosen at load time (AVX2
// where the CPU has it), so the extension needs no -march flag and still runs on any x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GK_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define GK_CLONES
#endif

// Elements per reduction block. Block boundaries, and so the order of every floating-point
// sum, depend only on the shape, never on the thread count: results are bit-reproducible.
constexpr int64_t kBlock = 16384;
// Elements per parallel task; smaller problems run on the calling thread.
constexpr int64_t kGrain = 32768;
// Independent accumulators of a reduction: GCC maps them onto vector registers without
// -ffast-math, because the order of additions is written out explicitly.
constexpr int kLanes = 16;
// Terms per lane summed in opmath_t before they are folded into the float64 lane totals.
constexpr int64_t kChunk = 16;

// sum_{j < n} term(j), as opmath_t terms, in kLanes interleaved partial sums: short runs of
// kChunk terms per lane in opmath_t (vector-friendly), folded into float64 lane totals, which are
// combined pairwise in a fixed order. The float64 fold keeps long float32 sums accurate to a
// few ulp (16 plain float32 running sums over 5*10^4 terms were measured 4e-6 relative off).
template <typename opmath_t, typename Term>
inline double lane_sum(int64_t n, Term&& term) {
  double total[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes * kChunk <= n; j += kLanes * kChunk) {
    opmath_t lane[kLanes] = {};
    for (int64_t c = 0; c < kChunk; ++c) {
      for (int k = 0; k < kLanes; ++k) lane[k] += term(j + c * kLanes + k);
    }
    for (int k = 0; k < kLanes; ++k) total[k] += static_cast<double>(lane[k]);
  }
  opmath_t lane[kLanes] = {};
  for (; j + kLanes <= n; j += kLanes) {
    for (int k = 0; k < kLanes; ++k) lane[k] += term(j + k);
  }
  for (int k = 0; k < kLanes; ++k) total[k] += static_cast<double>(lane[k]);
  double tail = 0;
  for (; j < n; ++j) tail += static_cast<double>(term(j));
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int k = 0; k < width; ++k) total[k] += total[k + width];
  }
  return total[0] + tail;
}

// Calls segment(i, start, len) over the flat range [0, B * N) of a batch-major buffer, cut at
// sample boundaries, in parallel: every element of sample i lies in [i * N, (i + 1) * N).
template <typename Segment>
inline void for_each_segment(int64_t B, int64_t N, Segment&& segment) {
  if (N == 0) return;
  at::parallel_for(0, B * N, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t pos = begin, i = begin / N; pos < end; ++i) {
      const int64_t stop = std::min(end, (i + 1) * N);
      segment(i, pos, stop - pos);
      pos = stop;
    }
  });
}

// sums[i] = sum over the blocks of sample i, in block order, of block_sum(i, start, len) (a
// float64 partial), where the blocks cut [i * N, (i + 1) * N) every kBlock elements. Blocks run
// in parallel.
template <typename BlockSum>
inline void per_sample_sums(int64_t B, int64_t N, double* sums, BlockSum&& block_sum) {
  if (N == 0) {
    std::fill(sums, sums + B, 0.0);
    return;
  }
  const int64_t per_sample = (N + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(B * per_sample));
  const int64_t grain = std::max<int64_t>(1, kGrain / std::min(N, kBlock));
  at::parallel_for(0, B * per_sample, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i = b / per_sample, k = b % per_sample;
      partial[b] = block_sum(i, i * N + k * kBlock, std::min(kBlock, N - k * kBlock));
    }
  });
  for (int64_t i = 0; i < B; ++i) {
    double s = 0;
    for (int64_t k = 0; k < per_sample; ++k) s += partial[i * per_sample + k];
    sums[i] = s;
  }
}

}  // namespace cpu
}  // namespace gankernels
