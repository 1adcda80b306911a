// CPU kernel of clip_ (docs/math.md section 4): w <- clamp(w, -c, c) in place for a whole list of
// tensors in one call, returning the count of elements left at +-c.
//
// float32 and float64 clamp in their own arithmetic: max(-c, w) then min(c, .), which the
// compiler turns into vector max/min that return w itself when w is NaN (as torch.clamp
// propagates NaN), and count |w| == c afterwards.
//
// On CPUs with AVX-512 (where torch's own clamp_ runs its AVX-512 kernel) both take the
// explicit path below instead: the compiler's vector form of the count (compare, zero-masked
// move, subtract per vector, at the AVX2 width) kept the fused pass 15-25% slower than clamp_
// on a cache-resident 2.76 M-element tensor; a compare into a mask register and one masked
// add, two vectors per trip, brought it to within 5-10% of clamp_ alone.
//
// float16 and bfloat16 clamp on the bit patterns instead, with no conversion to float:
// clip_bound.h clamp_bits, the rule the CUDA kernel applies to every dtype. It is exactly
// torch.clamp(w, -c, c) (sign of zero and NaN payloads kept) and the count of |w| == c
// afterwards, fused into the one read-modify-write pass. (The bit form also works for float32,
// but measured 1.7x slower there than the max/min form: more instructions per word.)
//
// Work is split over the total element count of all the tensors together, so a list of many
// small tensors is one (or no) parallel region, never one per tensor. Counts are integers, so
// the result does not depend on how the work is split. Non-dense tensors (rare: parameters
// are contiguous) are clamped through one contiguous copy each.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define GK_CLIP_AVX512 1
#endif

#include <ATen/MemoryOverlap.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "checks.h"
#include "clip_bound.h"
#include "cpu/partition.h"

namespace gankernels {
namespace {

// Elements per inner sub-block: per-lane 32-bit counters cannot overflow within one.
constexpr int64_t kSubBlock = 1 << 20;

template <typename U>
inline int64_t clamp_count_bits(U* __restrict p, int64_t n, U rc, U inf) {
  int64_t count = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kSubBlock) {
    const int64_t i1 = std::min(n, i0 + kSubBlock);
    uint32_t sub = 0;
    for (int64_t i = i0; i < i1; ++i) {
      U u = p[i];
      sub += clamp_bits(u, rc, inf);
      p[i] = u;
    }
    count += sub;
  }
  return count;
}

template <typename T, typename Count>
inline int64_t clamp_count_float(T* __restrict p, int64_t n, T c) {
  int64_t count = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kSubBlock) {
    const int64_t i1 = std::min(n, i0 + kSubBlock);
    Count sub = 0;  // as wide as T, so the comparison masks add up in the same vector lanes
    for (int64_t i = i0; i < i1; ++i) {
      T w = p[i];
      w = w < -c ? -c : w;  // false for NaN: w stays NaN
      w = w > c ? c : w;
      p[i] = w;
      sub += static_cast<Count>(std::abs(w) == c);
    }
    count += static_cast<int64_t>(sub);
  }
  return count;
}

#ifdef GK_CLIP_AVX512
#define GK_AVX512 __attribute__((target("avx512f,avx512dq")))
// GCC 12's own avx512fintrin.h trips -Wmaybe-uninitialized (its _mm512_undefined_* operands).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// The lanes of one 512-bit vector, for float (V = __m512) or double (V = __m512d).
template <typename T>
struct Avx512;

template <>
struct Avx512<float> {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  GK_AVX512 static V splat(float c) { return _mm512_set1_ps(c); }
  GK_AVX512 static V load(const float* p) { return _mm512_loadu_ps(p); }
  GK_AVX512 static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  GK_AVX512 static V max(V a, V b) { return _mm512_max_ps(a, b); }
  GK_AVX512 static V min(V a, V b) { return _mm512_min_ps(a, b); }
  GK_AVX512 static Mask at_bound(V w, V c) {
    return _mm512_cmp_ps_mask(_mm512_abs_ps(w), c, _CMP_EQ_OQ);
  }
  GK_AVX512 static __m512i count(__m512i acc, Mask m) {
    return _mm512_mask_add_epi32(acc, m, acc, _mm512_set1_epi32(1));
  }
  GK_AVX512 static int64_t total(__m512i acc) { return _mm512_reduce_add_epi32(acc); }
};

template <>
struct Avx512<double> {
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  GK_AVX512 static V splat(double c) { return _mm512_set1_pd(c); }
  GK_AVX512 static V load(const double* p) { return _mm512_loadu_pd(p); }
  GK_AVX512 static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  GK_AVX512 static V max(V a, V b) { return _mm512_max_pd(a, b); }
  GK_AVX512 static V min(V a, V b) { return _mm512_min_pd(a, b); }
  GK_AVX512 static Mask at_bound(V w, V c) {
    return _mm512_cmp_pd_mask(_mm512_abs_pd(w), c, _CMP_EQ_OQ);
  }
  GK_AVX512 static __m512i count(__m512i acc, Mask m) {
    return _mm512_mask_add_epi64(acc, m, acc, _mm512_set1_epi64(1));
  }
  GK_AVX512 static int64_t total(__m512i acc) { return _mm512_reduce_add_epi64(acc); }
};

template <typename T>
inline int64_t clamp_count_scalar(T* __restrict p, int64_t n, T c) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    T w = p[i];
    w = w < -c ? -c : w;
    w = w > c ? c : w;
    p[i] = w;
    count += std::abs(w) == c;
  }
  return count;
}

// max(-c, w) and min(c, .) return their second operand when either is NaN: w stays NaN, as
// in the scalar form, and the ordered compare does not count it.
template <typename T>
GK_AVX512 int64_t clamp_count_avx512(T* __restrict p, int64_t n, T c) {
  using A = Avx512<T>;
  constexpr int L = A::kLanes;
  const typename A::V hi = A::splat(c), lo = A::splat(-c);
  // A thread's share may start anywhere in a tensor: the elements before the first 64-byte
  // boundary go one by one, so that no vector access straddles two cache lines.
  const int64_t head = std::min(
      n, static_cast<int64_t>((64 - reinterpret_cast<uintptr_t>(p) % 64) % 64 / sizeof(T)));
  int64_t count = clamp_count_scalar(p, head, c);
  for (int64_t i0 = head; i0 < n; i0 += kSubBlock) {
    const int64_t i1 = std::min(n, i0 + kSubBlock);
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    int64_t i = i0;
    for (; i + 2 * L <= i1; i += 2 * L) {
      const typename A::V w0 = A::min(hi, A::max(lo, A::load(p + i)));
      const typename A::V w1 = A::min(hi, A::max(lo, A::load(p + i + L)));
      A::store(p + i, w0);
      A::store(p + i + L, w1);
      acc0 = A::count(acc0, A::at_bound(w0, hi));
      acc1 = A::count(acc1, A::at_bound(w1, hi));
    }
    count += A::total(acc0) + A::total(acc1) + clamp_count_scalar(p + i, i1 - i, c);
  }
  return count;
}

// Read once at load; __builtin_cpu_init first, since static initialisers may run before the
// constructor that fills in the CPU model.
const bool kHasAvx512 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}();
#pragma GCC diagnostic pop
#endif

GK_CLONES int64_t clamp_count_16(uint16_t* p, int64_t n, uint16_t rc, uint16_t inf) {
  return clamp_count_bits(p, n, rc, inf);
}
GK_CLONES int64_t clamp_count_32(float* p, int64_t n, float c) {
#ifdef GK_CLIP_AVX512
  if (kHasAvx512) return clamp_count_avx512(p, n, c);
#endif
  return clamp_count_float<float, uint32_t>(p, n, c);
}
GK_CLONES int64_t clamp_count_64(double* p, int64_t n, double c) {
#ifdef GK_CLIP_AVX512
  if (kHasAvx512) return clamp_count_avx512(p, n, c);
#endif
  return clamp_count_float<double, uint64_t>(p, n, c);
}

// One dense tensor's memory, viewed as `n` words of `width` bytes, with c for its dtype.
struct Segment : ClipBound {
  void* data;
  int64_t n;
};

template <typename T, typename Bits>
T bits_to(Bits bits) {
  static_assert(sizeof(T) == sizeof(Bits));
  T value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

int64_t clamp_count(const Segment& s, int64_t begin, int64_t len) {
  switch (s.width) {
    case 2:
      return clamp_count_16(static_cast<uint16_t*>(s.data) + begin, len,
                            static_cast<uint16_t>(s.rc), static_cast<uint16_t>(s.inf));
    case 4:
      return clamp_count_32(static_cast<float*>(s.data) + begin, len,
                            bits_to<float>(static_cast<uint32_t>(s.rc)));
    default:
      return clamp_count_64(static_cast<double*>(s.data) + begin, len, bits_to<double>(s.rc));
  }
}

at::Tensor clip_cpu(at::TensorList params, double c) {
  constexpr const char* op = "clip_";
  check_clip_bound(c, params.size());
  const c10::Device device = params[0].device();

  // Validate everything before writing anything: a bad tensor must not leave the list half
  // clipped.
  std::vector<Segment> segments;
  std::vector<int64_t> offsets;  // offsets[k]: where segment k starts in the concatenation
  std::vector<size_t> strided;   // params that are not dense: clamped through a copy
  segments.reserve(params.size());
  offsets.reserve(params.size());
  int64_t total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    check_clip_param(p, i, device);
    if (p.numel() == 0) continue;
    if (!p.is_non_overlapping_and_dense()) {
      strided.push_back(i);
      continue;
    }
    const Segment s{clip_bound(p.scalar_type(), c), p.data_ptr(), p.numel()};
    segments.push_back(s);
    offsets.push_back(total);
    total += s.n;
  }
  TORCH_CHECK(device.is_cpu(), op, ": the CPU kernel got params on ", device);

  // Clamps [begin, end) of the concatenation of every segment, returning its count.
  auto run = [&](int64_t begin, int64_t end) {
    size_t k = static_cast<size_t>(std::upper_bound(offsets.begin(), offsets.end(), begin) -
                                   offsets.begin() - 1);
    int64_t local = 0;
    for (int64_t pos = begin; pos < end; ++k) {
      const int64_t start = offsets[k];
      const int64_t stop = std::min(end, start + segments[k].n);
      local += clamp_count(segments[k], pos - start, stop - pos);
      pos = stop;
    }
    return local;
  };

  int64_t count = 0;
  if (total <= 2 * cpu::kGrain) {
    count = total > 0 ? run(0, total) : 0;
  } else {
    std::atomic<int64_t> shared{0};
    at::parallel_for(0, total, cpu::kGrain, [&](int64_t b, int64_t e) {
      shared.fetch_add(run(b, e), std::memory_order_relaxed);
    });
    count = shared.load();
  }

  for (size_t i : strided) {
    const at::Tensor& p = params[i];
    at::Tensor tmp = p.contiguous();
    const Segment s{clip_bound(tmp.scalar_type(), c), tmp.data_ptr(), tmp.numel()};
    count += clamp_count(s, 0, s.n);
    p.copy_(tmp);
  }

  at::Tensor result = at::empty({}, at::TensorOptions().dtype(at::kLong).device(device));
  *result.data_ptr<int64_t>() = count;
  return result;
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, CPU, m) { m.impl("clip_", &clip_cpu); }

}  // namespace gankernels
