// CPU kernels of mmd2 and mmd2_backward (docs/math.md section 8).
//
//   forward   MMD^2 = c_xx S(x, x) + c_yy S(y, y) - 2 c_xy S(x, y)
//             S(a, b) = sum_{i,j} k(a_i, b_j)   (diagonals left out when unbiased)
//             k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2))
//   backward  dL/da_m = g sum_j w_ab G(a_m, b_j) (a_m - b_j) over b in {x, y},
//             G = sum_s exp(-||a - b||^2 / (2 s^2)) / s^2,  w_aa = -2 c_aa (j != m),  w_xy = 2 c_xy
//
// No pair matrix is ever stored. Below kGemmD features a row tile of kRows samples meets a
// column tile of kCols samples; the tile's squared distances (from differences, not inner
// products: no cancellation) sit in a kRows x kCols block on the stack, where they are
// exponentiated and reduced. Columns are read from a transposed opmath copy, [D, n] padded to
// whole tiles, so that the distance loop runs along contiguous columns. From kGemmD features
// on, strips of kStrip rows take their inner products from a GEMM instead (see there). The
// opmath copies are the O((B + B') D) extra memory. S(a, a) sums the pairs i < j only and
// doubles them.
//
// Sums are float64, kept per row tile (or row) and added in order, so the result does not depend
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
// From this many features on, the distances come from GEMM strips of kStrip rows (see there).
constexpr int64_t kGemmD = 32;
constexpr int64_t kStrip = 256;

// exp of the kernels' non-positive arguments in float32 without library calls, so that the
// loops vectorise (host_math.h); float64, the checking dtype, takes libm's.
C10_ALWAYS_INLINE float kernel_exp(float x) { return host_math::exp_nonpositive(x); }
C10_ALWAYS_INLINE double kernel_exp(double x) { return std::exp(x); }

// One batch in opmath: its rows [n, D], then zero rows up to whole row tiles, and (below kGemmD
// features) its columns [D, pad], pad = n rounded up to whole column tiles (zeros past n). Pairs
// with a padding row or column are computed and never summed.
struct Batch {
  Tensor rows, cols;
  int64_t n, D, pad;
};

Batch prepare(const Tensor& t, at::ScalarType opmath) {
  const int64_t n = t.size(0), D = t.size(1);
  Tensor rows = at::zeros({(n + kRows - 1) / kRows * kRows, D}, t.options().dtype(opmath));
  rows.narrow(0, 0, n).copy_(t);
  const int64_t pad = (n + kCols - 1) / kCols * kCols;
  if (D >= kGemmD) return {rows, Tensor(), n, D, pad};  // the GEMM strips read rows only
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
C10_ALWAYS_INLINE void tile_distances(const T* __restrict a, const T* __restrict cols, int64_t pad,
                                      int64_t j0, int64_t D, Tile<T>& d2) {
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
C10_ALWAYS_INLINE void tile_kernel(Tile<T>& d2, int rows, const T* coef, const T* weight,
                                   int count) {
  for (int r = 0; r < rows; ++r) {
    T k[kCols] = {};
    for (int s = 0; s < count; ++s) {
      for (int c = 0; c < kCols; ++c) k[c] += weight[s] * kernel_exp(coef[s] * d2[r][c]);
    }
    for (int c = 0; c < kCols; ++c) d2[r][c] = k[c];
  }
}

// sum_j k(a_i, b_j) over the rows i of one row tile, and the columns j > i only when `upper`.
// Always inlined, as are the other loops the GK_CLONES wrappers below call: an out-of-line
// instance is compiled for the default target only, and the wrappers' AVX2 clones would call
// that SSE code (tests/test_build.py checks that no such instance is left in _C).
template <typename T>
C10_ALWAYS_INLINE double row_tile_sum(const Batch& A, const Batch& B, int64_t r0, bool upper,
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

// ---- many features: inner products from a GEMM -------------------------------------------------
// From kGemmD features on, the distances of a strip of up to kStrip rows against every column
// come from one matrix product, d^2 = max(|a|^2 + |b|^2 - 2 a.b, 0): the difference loops above
// run at about five float lanes per cycle here, a GEMM near peak, and from D = 64 on that was
// the whole difference against eager PyTorch (bench/results/mmd2-clip-cpu.md). A strip holds
// kStrip x B' inner products, never B x B'. The price is the inner products' cancellation for
// nearby points of large norm: an absolute error of about 2^-24 (|a|^2 + |b|^2) in float32 d^2.

// One strip row's inner products `row` become weight sum_s w_s exp(coef_s d^2_j), d^2_j from the
// inner products, the row's squared norm `na` and the columns' `nz` (w_s = 1 / s^2: the
// backward's G; w_s = 1: the kernel values), and returns their float64 sum; column `skip` (the
// row itself, against its own batch) gets 0.
template <typename T>
C10_ALWAYS_INLINE double strip_row_weights(T* __restrict row, T na, const T* __restrict nz,
                                           int64_t n, int64_t skip, T weight, const T* coef,
                                           const T* w, int count) {
  double total = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kCols) {
    const int m = static_cast<int>(std::min<int64_t>(kCols, n - j0));
    T d2[kCols], g[kCols];
    for (int c = 0; c < m; ++c) {
      const T v = na + nz[j0 + c] - 2 * row[j0 + c];
      d2[c] = v < 0 ? T(0) : v;
      g[c] = 0;
    }
    for (int s = 0; s < count; ++s) {
      for (int c = 0; c < m; ++c) g[c] += w[s] * kernel_exp(coef[s] * d2[c]);
    }
    double sum = 0;
    for (int c = 0; c < m; ++c) {
      const T value = j0 + c == skip ? T(0) : weight * g[c];
      row[j0 + c] = value;
      sum += static_cast<double>(value);
    }
    total += sum;
  }
  return total;
}

GK_CLONES double strip_row_weights_f(float* row, float na, const float* nz, int64_t n, int64_t skip,
                                     float weight, const float* coef, const float* w, int count) {
  return strip_row_weights<float>(row, na, nz, n, skip, weight, coef, w, count);
}
GK_CLONES double strip_row_weights_d(double* row, double na, const double* nz, int64_t n,
                                     int64_t skip, double weight, const double* coef,
                                     const double* w, int count) {
  return strip_row_weights<double>(row, na, nz, n, skip, weight, coef, w, count);
}

template <typename T>
double row_weights(T* row, T na, const T* nz, int64_t n, int64_t skip, T weight, const T* coef,
                   const T* w, int count) {
  if constexpr (std::is_same_v<T, float>) {
    return strip_row_weights_f(row, na, nz, n, skip, weight, coef, w, count);
  } else {
    return strip_row_weights_d(row, na, nz, n, skip, weight, coef, w, count);
  }
}

// pair_sum's result through GEMM strips: the row sums are kept per row and added in row order,
// so the result does not depend on the thread count.
template <typename T>
double gemm_pair_sum(const Batch& A, const Batch& B, bool same, bool diagonal,
                     const Bandwidths<T>& bw) {
  const Tensor a = A.rows.narrow(0, 0, A.n), b = B.rows.narrow(0, 0, B.n);
  const Tensor na = a.square().sum(1), nb = same ? na : b.square().sum(1);
  const T* na_p = na.const_data_ptr<T>();
  const T* nb_p = nb.const_data_ptr<T>();
  std::vector<double> partial(static_cast<size_t>(A.n));
  for (int64_t r0 = 0; r0 < A.n; r0 += kStrip) {
    const int64_t rows = std::min<int64_t>(kStrip, A.n - r0);
    // Against itself, only the columns from the strip's first row on (pairs i < j).
    const int64_t c0 = same ? r0 : 0;
    Tensor dots = at::mm(a.narrow(0, r0, rows), b.narrow(0, c0, B.n - c0).t()).contiguous();
    T* d = dots.mutable_data_ptr<T>();
    const int64_t width = B.n - c0;
    at::parallel_for(0, rows, 8, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        // The kernel values, weight 1 each: the backward's G with the bandwidths' 1 / s^2 left out.
        const int64_t lo = same ? i + 1 : 0;
        partial[r0 + i] =
            row_weights<T>(d + i * width + lo, na_p[r0 + i], nb_p + c0 + lo, width - lo, -1, T(1),
                           bw.coef.data(), bw.ones.data(), bw.count);
      }
    });
  }
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
  const auto sum = X.D >= kGemmD ? gemm_pair_sum<T> : pair_sum<T>;
  const double sxx = sum(X, X, true, !unbiased, bw);
  const double syy = sum(Y, Y, true, !unbiased, bw);
  const double sxy = sum(X, Y, false, false, bw);
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

// acc[r][:] += sum_j weight G(a_r, b_j) (a_r - b_j) (float64) for the rows of one row tile
// against every column tile of B, skipping j == r0 + r when B is A itself. Each tile's sum is
// taken in T over at most kCols pairs, then added to the float64 accumulator: the gradient is
// a difference of such sums, which float32 accumulated over a whole batch would not hold.
template <typename T>
C10_ALWAYS_INLINE void add_row_tile_gradient(const Batch& A, const Batch& B, int64_t r0, bool same,
                                             T weight, const Bandwidths<T>& bw,
                                             double* __restrict acc) {
  const int rows = static_cast<int>(std::min<int64_t>(kRows, A.n - r0));
  const int64_t D = A.D;
  const T* a = A.rows.const_data_ptr<T>() + r0 * D;
  const T* cols = B.cols.const_data_ptr<T>();
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

// acc += sum_j weight G(a_m, z_j) (a_m - z_j) for every row m of A, through GEMM strips:
// a_m sum_j G_mj - (G Z)_m, with G's row sums in float64 and the strip's result added to the
// float64 accumulator [A.n, D].
template <typename T>
void gemm_add_gradient(const Batch& A, const Batch& Z, bool same, T weight, const Bandwidths<T>& bw,
                       Tensor& acc) {
  const Tensor a = A.rows.narrow(0, 0, A.n), z = Z.rows.narrow(0, 0, Z.n);
  const Tensor na = a.square().sum(1), nz = same ? na : z.square().sum(1);
  const T* na_p = na.const_data_ptr<T>();
  const T* nz_p = nz.const_data_ptr<T>();
  for (int64_t r0 = 0; r0 < A.n; r0 += kStrip) {
    const int64_t rows = std::min<int64_t>(kStrip, A.n - r0);
    const Tensor strip = a.narrow(0, r0, rows);
    Tensor g = at::mm(strip, z.t()).contiguous();
    Tensor rowsum = at::empty({rows, 1}, acc.options());
    T* g_p = g.mutable_data_ptr<T>();
    double* rs = rowsum.mutable_data_ptr<double>();
    at::parallel_for(0, rows, 8, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t skip = same ? r0 + i : -1;
        T* row = g_p + i * Z.n;
        rs[i] = row_weights<T>(row, na_p[r0 + i], nz_p, Z.n, skip, weight, bw.coef.data(),
                               bw.inv_sq.data(), bw.count);
      }
    });
    acc.narrow(0, r0, rows).add_(strip.to(at::kDouble) * rowsum - at::mm(g, z).to(at::kDouble));
  }
}

// The gradients of x and y (opmath, [n, D] each), row tiles of both in one parallel loop. The
// estimator's weights go into G; the upstream gradient scales the float64 sums at the end.
template <typename T>
void mmd2_gradients(double grad, const Batch& X, const Batch& Y, at::ArrayRef<double> sigmas,
                    bool unbiased, T* gx, T* gy) {
  const Bandwidths<T> bw = bandwidths<T>(sigmas);
  const Weights w = estimator_weights(X.n, Y.n, unbiased);
  const int64_t D = X.D;
  if (D >= kGemmD) {
    const auto options = X.rows.options().dtype(at::kDouble);
    Tensor acc_x = at::zeros({X.n, D}, options), acc_y = at::zeros({Y.n, D}, options);
    gemm_add_gradient<T>(X, X, true, static_cast<T>(-2 * w.xx), bw, acc_x);
    gemm_add_gradient<T>(X, Y, false, static_cast<T>(2 * w.xy), bw, acc_x);
    gemm_add_gradient<T>(Y, Y, true, static_cast<T>(-2 * w.yy), bw, acc_y);
    gemm_add_gradient<T>(Y, X, false, static_cast<T>(2 * w.xy), bw, acc_y);
    const double* ax = acc_x.const_data_ptr<double>();
    const double* ay = acc_y.const_data_ptr<double>();
    for (int64_t i = 0; i < X.n * D; ++i) gx[i] = static_cast<T>(grad * ax[i]);
    for (int64_t i = 0; i < Y.n * D; ++i) gy[i] = static_cast<T>(grad * ay[i]);
    return;
  }
  const int64_t x_tiles = (X.n + kRows - 1) / kRows, y_tiles = (Y.n + kRows - 1) / kRows;
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
