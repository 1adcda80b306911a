// The accumulation ("opmath") type of every kernel, named as ATen names it: float for the 16-bit
// types and float32, double for float64. Kernels spell the type at::opmath_type<scalar_t> and
// call it opmath_t locally; host code asks for its ScalarType here.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/core/ScalarType.h>

namespace gankernels {

inline at::ScalarType opmath_scalar_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace gankernels
