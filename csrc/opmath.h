// The accumulation ("opmath") type of every kernel: float for the 16-bit types and float32,
// double for float64 (ATen's at::opmath_type).
#pragma once

#include <ATen/OpMathType.h>

namespace gankernels {

template <typename scalar_t>
using opmath_t = at::opmath_type<scalar_t>;

}  // namespace gankernels
