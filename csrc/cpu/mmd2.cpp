// CPU kernels of mmd2 and mmd2_backward (docs/math.md section 8).
//
//   forward   MMD^2 = c_xx S(x, x) + c_yy S(y, y) - 2 c_xy S(x, y)
//             S(a, b) = sum_{i,j} k(a_i, b_j)   (diagonals left out when unbiased)
//             k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2))
//   backward  dL/da_m = g sum_j w_ab G(a_m, b_j) (a_m - b_j) over b in {x, y},
//             G = sum_s exp(-||a - b||^2 / (2 s^2)) / s^2,  w_aa = -2 c_aa (j != m),  w_xy = 2 c_xy
//
// No pair matrix is ever stored. A row tile of kRows samples meets a column tile of kCols
// samples; the tile's squared distances (from differences, not inner products: no cancellation)
// sit in a kRows x kCols block on the stack, where they are exponentiated and reduced. Columns are
// read from a transposed opmath copy, [D, n] padded to whole tiles, so that the distance loop runs
// along contiguous columns whatever D is, 2 or 1024; these copies are the O((B + B') D) extra
// memory. S(a, a) sums the pairs i < j only and doubles them.
//
// Tile sums are float64, kept per row tile and added in tile order, so the result does not depend
// on the thread count. The arithmetic is in float32 for half types, float64 for float64.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "checks.h"
#include "cpu/partition.h"
#include "host_math.h"
#include "opmath.h"

namespace gankernels {
namespace {

using at::Tensor;

constexpr int kRows = 8;
constexpr int kCols = 64;

// exp of the kernels' non-positive arguments in float32 without library calls, so that the
// loops vectorise (host_math.h); float64, the checking dtype, takes libm's.
C10_ALWAYS_INLINE float kernel_exp(float x) { return host_math::exp_nonpositive(x); }
C10_ALWAYS_INLINE double kernel_exp(double x) { return std::exp(x); }

// One batch in opmath: its rows [n, D], then zero rows up to whole row tiles, and its columns
// [D, pad], pad = n rounded up to whole column tiles (zeros past n). Pairs with a padding row or
// column are computed and never summed.
struct Batch {
  Tensor rows, cols;
  int64_t n, D, pad;
};

Batch prepare(const Tensor& t, at::ScalarType opmath) {
  const int64_t n = t.size(0), D = t.size(1);
  Tensor rows = at::zeros({(n + kRows - 1) / kRows * kRows, D}, t.options().dtype(opmath));
  rows.narrow(0, 0, n).copy_(t);
  const int64_t pad = (n + kCols - 1) / kCols * kCols;
  Tensor cols = at::zeros({D, pad}, rows.options());
  cols.narrow(1, 0, n).copy_(rows.narrow(0, 0, n).t());
  return {rows, cols, n, D, pad};
}

// The bandwidths as exponent coefficients -1 / (2 s^2) and as gradient weights 1 / s^2.
template <typename T>
struct Bandwidths {
  std::vector<T> coef, inv_sq, ones;
  int count;
};

template <typename T>
Bandwidths<T> bandwidths(at::ArrayRef<double> sigmas) {
  Bandwidths<T> b;
  b.count = static_cast<int>(sigmas.size());
  for (double s : sigmas) {
    b.coef.push_back(static_cast<T>(-0.5 / (s * s)));
    b.inv_sq.push_back(static_cast<T>(1.0 / (s * s)));
    b.ones.push_back(T(1));
  }
  return b;
}

template <typename T>
using Tile = T[kRows][kCols];

// d2[r][c] = ||a_r - b_(j0 + c)||^2 for the kRows rows at `a` (row stride D) and the kCols
// columns from j0 of the transposed batch `cols` (row stride pad): one feature at a time, a
// whole row of columns per vector step. (Register blocks written with 64-byte GCC vector types
// were 12x slower in the AVX2 and default clones, which pass such vectors through memory.)
template <typename T>
inline void tile_distances(const T* __restrict a, const T* __restrict cols, int64_t pad, int64_t j0,
                           int64_t D, Tile<T>& d2) {
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kCols; ++c) d2[r][c] = 0;
  }
  for (int64_t d = 0; d < D; ++d) {
    const T* __restrict b = cols + d * pad + j0;
    for (int r = 0; r < kRows; ++r) {
      const T ar = a[r * D + d];
      for (int c = 0; c < kCols; ++c) {
        const T diff = ar - b[c];
        d2[r][c] += diff * diff;
      }
    }
  }
}

// k[r][c] = sum_s weight_s exp(coef_s d2[r][c]), in place.
template <typename T>
inline void tile_kernel(Tile<T>& d2, int rows, const T* coef, const T* weight, int count) {
  for (int r = 0; r < rows; ++r) {
    T k[kCols] = {};
    for (int s = 0; s < count; ++s) {
      for (int c = 0; c < kCols; ++c) k[c] += weight[s] * kernel_exp(coef[s] * d2[r][c]);
    }
    for (int c = 0; c < kCols; ++c) d2[r][c] = k[c];
  }
}

// sum_j k(a_i, b_j) over the rows i of one row tile, and the columns j > i only when `upper`.
template <typename T>
double row_tile_sum(const Batch& A, const Batch& B, int64_t r0, bool upper,
                    const Bandwidths<T>& bw) {
  const int rows = static_cast<int>(std::min<int64_t>(kRows, A.n - r0));
  const T* a = A.rows.const_data_ptr<T>() + r0 * A.D;
  const T* cols = B.cols.const_data_ptr<T>();
  alignas(64) Tile<T> tile;
  double total = 0;
  for (int64_t j0 = upper ? r0 / kCols * kCols : 0; j0 < B.n; j0 += kCols) {
    tile_distances(a, cols, B.pad, j0, A.D, tile);
    tile_kernel(tile, rows, bw.coef.data(), bw.ones.data(), bw.count);
    const int64_t c_hi = std::min<int64_t>(kCols, B.n - j0);
    for (int r = 0; r < rows; ++r) {
      const int64_t c_lo = upper ? std::max<int64_t>(0, r0 + r + 1 - j0) : 0;
      // In float64: MMD^2 is a difference of sums that can cancel by orders of magnitude.
      double s = 0;
      for (int64_t c = c_lo; c < c_hi; ++c) s += static_cast<double>(tile[r][c]);
      total += s;
    }
  }
  return total;
}

GK_CLONES double row_tile_sum_f(const Batch& A, const Batch& B, int64_t r0, bool upper,
                                const Bandwidths<float>& bw) {
  return row_tile_sum<float>(A, B, r0, upper, bw);
}
GK_CLONES double row_tile_sum_d(const Batch& A, const Batch& B, int64_t r0, bool upper,
                                const Bandwidths<double>& bw) {
  return row_tile_sum<double>(A, B, r0, upper, bw);
}

template <typename T>
double tile_sum(const Batch& A, const Batch& B, int64_t r0, bool upper, const Bandwidths<T>& bw) {
  if constexpr (std::is_same_v<T, float>) {
    return row_tile_sum_f(A, B, r0, upper, bw);
  } else {
    return row_tile_sum_d(A, B, r0, upper, bw);
  }
}

// sum_{i,j} k(a_i, b_j); for a batch against itself (`same`) the sum over i != j, or over all
// pairs when `diagonal` (k(a, a) = number of bandwidths, exactly).
template <typename T>
double pair_sum(const Batch& A, const Batch& B, bool same, bool diagonal, const Bandwidths<T>& bw) {
  const int64_t tiles = (A.n + kRows - 1) / kRows;
  std::vector<double> partial(static_cast<size_t>(tiles));
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      // Row tile i of a triangle costs n - i: pairing the first with the last balances the
      // threads' contiguous shares of the tasks.
      const int64_t i = same ? (t % 2 == 0 ? t / 2 : tiles - 1 - t / 2) : t;
      partial[i] = tile_sum<T>(A, B, i * kRows, same, bw);
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  if (!same) return total;
  return 2 * total + (diagonal ? static_cast<double>(A.n) * bw.count : 0.0);
}

// The estimator's weights: MMD^2 = c_xx S(x, x) + c_yy S(y, y) - 2 c_xy S(x, y).
struct Weights {
  double xx, yy, xy;
};

Weights estimator_weights(int64_t n, int64_t m, bool unbiased) {
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  if (unbiased) return {1.0 / (dn * (dn - 1)), 1.0 / (dm * (dm - 1)), 1.0 / (dn * dm)};
  return {1.0 / (dn * dn), 1.0 / (dm * dm), 1.0 / (dn * dm)};
}

template <typename T>
double mmd2_value(const Batch& X, const Batch& Y, at::ArrayRef<double> sigmas, bool unbiased) {
  const Bandwidths<T> bw = bandwidths<T>(sigmas);
  const Weights w = estimator_weights(X.n, Y.n, unbiased);
  const double sxx = pair_sum<T>(X, X, true, !unbiased, bw);
  const double syy = pair_sum<T>(Y, Y, true, !unbiased, bw);
  const double sxy = pair_sum<T>(X, Y, false, false, bw);
  return w.xx * sxx + w.yy * syy - 2 * w.xy * sxy;
}

Tensor mmd2_cpu(const Tensor& x, const Tensor& y, at::ArrayRef<double> sigmas, bool unbiased) {
  check_mmd2(x, y, sigmas, unbiased);
  TORCH_CHECK(x.device().is_cpu(), "mmd2: the CPU kernel got x on ", x.device());
  const auto opmath = opmath_scalar_type(x.scalar_type());
  const Batch X = prepare(x, opmath), Y = prepare(y, opmath);
  const double value = opmath == at::kDouble ? mmd2_value<double>(X, Y, sigmas, unbiased)
                                             : mmd2_value<float>(X, Y, sigmas, unbiased);
  return at::scalar_tensor(value, x.options().dtype(opmath));
}

// From this many features on, a tile's gradient runs along each column's features (vectors of
// D); below, along the transposed columns (vectors of columns, one sum per feature).
constexpr int64_t kWideD = 32;

// acc[r][:] += sum_j weight G(a_r, b_j) (a_r - b_j) (float64) for the rows of one row tile
// against every column tile of B, skipping j == r0 + r when B is A itself. Each tile's sum is
// taken in T over at most kCols pairs, then added to the float64 accumulator: the gradient is
// a difference of such sums, which float32 accumulated over a whole batch would not hold.
template <typename T>
void add_row_tile_gradient(const Batch& A, const Batch& B, int64_t r0, bool same, T weight,
                           const Bandwidths<T>& bw, double* __restrict acc) {
  const int rows = static_cast<int>(std::min<int64_t>(kRows, A.n - r0));
  const int64_t D = A.D;
  const T* a = A.rows.const_data_ptr<T>() + r0 * D;
  const T* b_rows = B.rows.const_data_ptr<T>();
  const T* cols = B.cols.const_data_ptr<T>();
  const bool wide = D >= kWideD;
  std::vector<T> part(wide ? static_cast<size_t>(D) : 0);
  alignas(64) Tile<T> tile;
  for (int64_t j0 = 0; j0 < B.n; j0 += kCols) {
    tile_distances(a, cols, B.pad, j0, D, tile);
    tile_kernel(tile, rows, bw.coef.data(), bw.inv_sq.data(), bw.count);
    const int64_t c_hi = std::min<int64_t>(kCols, B.n - j0);
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < kCols; ++c) {
        const bool valid = c < c_hi && !(same && j0 + c == r0 + r);
        tile[r][c] = valid ? weight * tile[r][c] : T(0);
      }
    }
    if (!wide) {
      // Sums over the tile's columns in kLanes interleaved partial sums, which the compiler
      // vectorises (one sum in order would not be reordered without -ffast-math).
      constexpr int kLanes = 16;
      for (int64_t d = 0; d < D; ++d) {
        const T* __restrict b = cols + d * B.pad + j0;
        for (int r = 0; r < rows; ++r) {
          const T av = a[r * D + d];
          T lane[kLanes] = {};
          for (int c = 0; c < kCols; c += kLanes) {
            for (int l = 0; l < kLanes; ++l) lane[l] += tile[r][c + l] * (av - b[c + l]);
          }
          T total = 0;
          for (int l = 0; l < kLanes; ++l) total += lane[l];
          acc[r * D + d] += static_cast<double>(total);
        }
      }
      continue;
    }
    for (int r = 0; r < rows; ++r) {
      const T* __restrict ar = a + r * D;
      T* __restrict out = part.data();
      std::fill(out, out + D, T(0));
      // Four columns per pass over the features: one load and store of `out` per four products.
      int64_t c = 0;
      for (; c + 4 <= c_hi; c += 4) {
        const T g0 = tile[r][c], g1 = tile[r][c + 1], g2 = tile[r][c + 2], g3 = tile[r][c + 3];
        // Far pairs (exp underflowed) and the diagonal add nothing; NaN is kept.
        if (g0 == 0 && g1 == 0 && g2 == 0 && g3 == 0) continue;
        const T* __restrict b0 = b_rows + (j0 + c) * D;
        const T* __restrict b1 = b0 + D;
        const T* __restrict b2 = b1 + D;
        const T* __restrict b3 = b2 + D;
        for (int64_t d = 0; d < D; ++d) {
          const T x = ar[d];
          out[d] += g0 * (x - b0[d]) + g1 * (x - b1[d]) + g2 * (x - b2[d]) + g3 * (x - b3[d]);
        }
      }
      for (; c < c_hi; ++c) {
        const T g = tile[r][c];
        if (g == 0) continue;
        const T* __restrict br = b_rows + (j0 + c) * D;
        for (int64_t d = 0; d < D; ++d) out[d] += g * (ar[d] - br[d]);
      }
      double* __restrict row_acc = acc + r * D;
      for (int64_t d = 0; d < D; ++d) row_acc[d] += static_cast<double>(out[d]);
    }
  }
}

GK_CLONES void add_row_tile_gradient_f(const Batch& A, const Batch& B, int64_t r0, bool same,
                                       float weight, const Bandwidths<float>& bw, double* acc) {
  add_row_tile_gradient<float>(A, B, r0, same, weight, bw, acc);
}
GK_CLONES void add_row_tile_gradient_d(const Batch& A, const Batch& B, int64_t r0, bool same,
                                       double weight, const Bandwidths<double>& bw, double* acc) {
  add_row_tile_gradient<double>(A, B, r0, same, weight, bw, acc);
}

template <typename T>
void add_gradient(const Batch& A, const Batch& B, int64_t r0, bool same, T weight,
                  const Bandwidths<T>& bw, double* acc) {
  if constexpr (std::is_same_v<T, float>) {
    add_row_tile_gradient_f(A, B, r0, same, weight, bw, acc);
  } else {
    add_row_tile_gradient_d(A, B, r0, same, weight, bw, acc);
  }
}

// The gradients of x and y (opmath, [n, D] each), row tiles of both in one parallel loop. The
// estimator's weights go into G; the upstream gradient scales the float64 sums at the end.
template <typename T>
void mmd2_gradients(double grad, const Batch& X, const Batch& Y, at::ArrayRef<double> sigmas,
                    bool unbiased, T* gx, T* gy) {
  const Bandwidths<T> bw = bandwidths<T>(sigmas);
  const Weights w = estimator_weights(X.n, Y.n, unbiased);
  const int64_t x_tiles = (X.n + kRows - 1) / kRows, y_tiles = (Y.n + kRows - 1) / kRows;
  const int64_t D = X.D;
  at::parallel_for(0, x_tiles + y_tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<double> acc(static_cast<size_t>(kRows * D));
    for (int64_t t = t0; t < t1; ++t) {
      const bool is_x = t < x_tiles;
      const Batch& A = is_x ? X : Y;
      const Batch& other = is_x ? Y : X;
      const int64_t r0 = (is_x ? t : t - x_tiles) * kRows;
      const int64_t rows = std::min<int64_t>(kRows, A.n - r0);
      std::fill(acc.begin(), acc.end(), 0.0);
      const double self = is_x ? w.xx : w.yy;
      add_gradient<T>(A, A, r0, true, static_cast<T>(-2 * self), bw, acc.data());
      add_gradient<T>(A, other, r0, false, static_cast<T>(2 * w.xy), bw, acc.data());
      T* out = (is_x ? gx : gy) + r0 * D;
      for (int64_t i = 0; i < rows * D; ++i) out[i] = static_cast<T>(grad * acc[i]);
    }
  });
}

std::tuple<Tensor, Tensor> mmd2_backward_cpu(const Tensor& grad, const Tensor& x, const Tensor& y,
                                             at::ArrayRef<double> sigmas, bool unbiased) {
  check_mmd2_backward(grad, x, y, sigmas, unbiased);
  TORCH_CHECK(x.device().is_cpu(), "mmd2_backward: the CPU kernel got x on ", x.device());
  const auto opmath = opmath_scalar_type(x.scalar_type());
  const Batch X = prepare(x, opmath), Y = prepare(y, opmath);
  const double g = grad.to(at::kDouble).item<double>();
  Tensor gx = at::empty({X.n, X.D}, x.options().dtype(opmath));
  Tensor gy = at::empty({Y.n, Y.D}, y.options().dtype(opmath));
  if (opmath == at::kDouble) {
    mmd2_gradients<double>(g, X, Y, sigmas, unbiased, gx.mutable_data_ptr<double>(),
                           gy.mutable_data_ptr<double>());
  } else {
    mmd2_gradients<float>(g, X, Y, sigmas, unbiased, gx.mutable_data_ptr<float>(),
                          gy.mutable_data_ptr<float>());
  }
  return {gx.to(x.scalar_type()), gy.to(y.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, CPU, m) {
  m.impl("mmd2", &mmd2_cpu);
  m.impl("mmd2_backward", &mmd2_backward_cpu);
}

}  // namespace gankernels
