// The bound of clip_ as it applies to one dtype, shared by the CPU and CUDA kernels: c rounded
// to the dtype exactly as torch rounds a Python-float clamp bound (through float32 for the half
// types), and that dtype's +inf, as bit patterns of the dtype's width; and the sign and
// magnitude masks of those bit patterns.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>

namespace gankernels {

// The sign bit and the magnitude bits of an IEEE word of type U (uint16_t, uint32_t, uint64_t).
// The cast before the shift matters: ~U(0) of a uint16_t is promoted to int (all ones, 32 bits),
// and a shift of that leaves 0xFFFF as the magnitude mask and 0 as the sign mask - which once
// made the CUDA kernel skip every negative float16/bfloat16 value.
template <typename U>
struct ClipBits {
  static constexpr U kMag = static_cast<U>(static_cast<U>(~U(0)) >> 1);
  static constexpr U kSign = static_cast<U>(~kMag);
};
static_assert(ClipBits<uint16_t>::kMag == 0x7fffu && ClipBits<uint16_t>::kSign == 0x8000u,
              "16-bit clip_ masks");
static_assert(ClipBits<uint32_t>::kMag == 0x7fffffffu && ClipBits<uint32_t>::kSign == 0x80000000u,
              "32-bit clip_ masks");
static_assert(ClipBits<uint64_t>::kMag == 0x7fffffffffffffffull &&
                  ClipBits<uint64_t>::kSign == 0x8000000000000000ull,
              "64-bit clip_ masks");

// The clamp of one word, on its bits, with rc = the bits of c in U's dtype and inf = +inf's:
//   rc <= m <= inf  ->  at or beyond +-c (infinities included): becomes sign | rc; counted;
//   m < rc          ->  inside (-c, c): unchanged;
//   m > inf         ->  NaN: unchanged, as torch.clamp propagates NaN;
// where m = bits & kMag. Returns whether the word is at +-c afterwards.
template <typename U>
C10_HOST_DEVICE C10_ALWAYS_INLINE bool clamp_bits(U& u, U rc, U inf) {
  const U m = static_cast<U>(u & ClipBits<U>::kMag);
  const bool sat = (m >= rc) & (m <= inf);
  u = sat ? static_cast<U>((u & ClipBits<U>::kSign) | rc) : u;
  return sat;
}

struct ClipBound {
  int width;     // bytes per element: 2, 4 or 8
  uint64_t rc;   // bits of c rounded to the dtype
  uint64_t inf;  // bits of +inf in the dtype
};

template <typename T, typename Bits>
Bits bits_of(T value) {
  static_assert(sizeof(T) == sizeof(Bits), "bits_of: T and Bits must have the same size");
  Bits b;
  std::memcpy(&b, &value, sizeof(b));
  return b;
}

inline ClipBound clip_bound(c10::ScalarType dtype, double c) {
  switch (dtype) {
    case c10::kDouble: return {8, bits_of<double, uint64_t>(c), 0x7ff0000000000000ull};
    case c10::kFloat: return {4, bits_of<float, uint32_t>(static_cast<float>(c)), 0x7f800000u};
    case c10::kHalf: return {2, c10::Half(static_cast<float>(c)).x, 0x7c00u};
    case c10::kBFloat16: return {2, c10::BFloat16(static_cast<float>(c)).x, 0x7f80u};
    default: TORCH_CHECK(false, "clip_: internal error: unexpected dtype ", dtype);
  }
}

}  // namespace gankernels
