// The bound of clip_ as it applies to one dtype, shared by the CPU and CUDA kernels: c rounded
// to the dtype exactly as torch rounds a Python-float clamp bound (through float32 for the half
// types), and that dtype's +inf, as bit patterns of the dtype's width.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>

namespace gankernels {

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
    case c10::kDouble:
      return {8, bits_of<double, uint64_t>(c), 0x7ff0000000000000ull};
    case c10::kFloat:
      return {4, bits_of<float, uint32_t>(static_cast<float>(c)), 0x7f800000u};
    case c10::kHalf:
      return {2, c10::Half(static_cast<float>(c)).x, 0x7c00u};
    case c10::kBFloat16:
      return {2, c10::BFloat16(static_cast<float>(c)).x, 0x7f80u};
    default:
      TORCH_CHECK(false, "clip_: internal error: unexpected dtype ", dtype);
  }
}

}  // namespace gankernels
