// Argument checks and small helpers shared by the CPU and CUDA kernels. Messages match
// gankernels/ops/_checks.py: they name the op, the argument and what was expected.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>

namespace gankernels {

template <typename scalar_t>
using opmath_t = at::opmath_type<scalar_t>;

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  const auto st = t.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
              op, ": ", name, " must be float32, float64, float16 or bfloat16, got ", st);
}

inline void check_batch(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.dim() >= 1, op, ": ", name, " must have a batch dimension, got a 0-dim tensor");
  TORCH_CHECK(t.size(0) > 0, op, ": ", name, " has an empty batch (shape ", t.sizes(),
              "); need B >= 1");
}

inline void check_same_device(const at::Tensor& t, const at::Tensor& ref, const char* op,
                              const char* name, const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " must be on the same device as ",
              ref_name, " (", ref.device(), "), got ", t.device());
}

inline void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op,
                       const char* name, const char* ref_name, bool shape = true) {
  check_same_device(t, ref, op, name, ref_name);
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", name,
              " must have the same dtype as ", ref_name, " (", ref.scalar_type(), "), got ",
              t.scalar_type());
  if (shape) {
    TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", name, " must have the same shape as ",
                ref_name, " ", ref.sizes(), ", got ", t.sizes());
  }
}

// Loss kinds and roles, parsed once per call from the schema's strings.
enum class LossKind {
  Minimax, Nonsaturating, Wasserstein, Hinge, LeastSquares, Relativistic,
  KL, ReverseKL, Pearson, Neyman, SquaredHellinger, JensenShannon, Gan, TotalVariation,
};

inline LossKind parse_loss_kind(c10::string_view kind) {
  static const std::pair<const char*, LossKind> table[] = {
      {"minimax", LossKind::Minimax}, {"nonsaturating", LossKind::Nonsaturating},
      {"wasserstein", LossKind::Wasserstein}, {"hinge", LossKind::Hinge},
      {"least_squares", LossKind::LeastSquares}, {"relativistic", LossKind::Relativistic},
      {"kl", LossKind::KL}, {"reverse_kl", LossKind::ReverseKL}, {"pearson", LossKind::Pearson},
      {"neyman", LossKind::Neyman}, {"squared_hellinger", LossKind::SquaredHellinger},
      {"jensen_shannon", LossKind::JensenShannon}, {"gan", LossKind::Gan},
      {"total_variation", LossKind::TotalVariation},
  };
  for (const auto& entry : table) {
    if (kind == entry.first) return entry.second;
  }
  TORCH_CHECK(false, "adversarial_loss: unknown kind '", std::string(kind),
              "'; expected one of: minimax, nonsaturating, wasserstein, hinge, least_squares, "
              "relativistic, kl, reverse_kl, pearson, neyman, squared_hellinger, "
              "jensen_shannon, gan, total_variation");
}

inline bool parse_role_is_critic(c10::string_view role) {
  TORCH_CHECK(role == "critic" || role == "generator",
              "adversarial_loss: role must be one of critic, generator, got '", std::string(role),
              "'");
  return role == "critic";
}

}  // namespace gankernels

// --- Memory layout (appended for the CPU kernels; usable by any backend) ------------------------

namespace gankernels {

// True when t is non-overlapping and dense with the batch dim outermost: sample i is then the
// contiguous chunk [i * N, (i + 1) * N) of t's memory (N = numel / B), in whatever order the
// other dims are laid out. Contiguous and channels_last tensors both qualify.
inline bool batch_major_dense(const at::Tensor& t) {
  if (t.dim() == 0 || !t.is_non_overlapping_and_dense()) return false;
  return t.size(0) == 1 || t.stride(0) == t.numel() / t.size(0);
}

// True when a and b have the same shape and place every element at the same memory offset
// (strides of size-1 dims do not matter).
inline bool same_layout(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  }
  return true;
}

// `t` itself when it already has `layout`'s memory layout, else one copy of it in that layout
// (layout must be dense): expanded (stride-0) or strided inputs take this path.
inline at::Tensor in_layout_of(const at::Tensor& t, const at::Tensor& layout) {
  if (same_layout(t, layout) && t.is_non_overlapping_and_dense()) return t;
  return at::empty_like(layout, t.options()).copy_(t);
}

}  // namespace gankernels

// --- CPU work partitioning (appended for csrc/cpu; host code only) -------------------------------
#ifndef __CUDACC__
#include <ATen/Parallel.h>

#include <algorithm>
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
// Terms per lane summed in acc_t before they are folded into the float64 lane totals.
constexpr int64_t kChunk = 16;

// sum_{j < n} term(j), as acc_t terms, in kLanes interleaved partial sums: short runs of
// kChunk terms per lane in acc_t (vector-friendly), folded into float64 lane totals, which are
// combined pairwise in a fixed order. The float64 fold keeps long float32 sums accurate to a
// few ulp (16 plain float32 running sums over 5*10^4 terms were measured 4e-6 relative off).
template <typename acc_t, typename Term>
inline double lane_sum(int64_t n, Term&& term) {
  double total[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes * kChunk <= n; j += kLanes * kChunk) {
    acc_t lane[kLanes] = {};
    for (int64_t c = 0; c < kChunk; ++c) {
      for (int k = 0; k < kLanes; ++k) lane[k] += term(j + c * kLanes + k);
    }
    for (int k = 0; k < kLanes; ++k) total[k] += static_cast<double>(lane[k]);
  }
  acc_t lane[kLanes] = {};
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
#endif  // __CUDACC__
