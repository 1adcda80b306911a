// CUDA kernels of mmd2 and mmd2_backward (docs/math.md section 8).
//
//   forward   MMD^2 = c_xx S(x, x) + c_yy S(y, y) - 2 c_xy S(x, y)
//             S(a, b) = sum_{i,j} k(a_i, b_j)   (diagonals left out when unbiased)
//             k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2))
//   backward  dL/da_m = g sum_j w_ab G(a_m, b_j) (a_m - b_j) over b in {x, y},
//             G = sum_s exp(-||a - b||^2 / (2 s^2)) / s^2,  w_aa = -2 c_aa (j != m),  w_xy = 2 c_xy
//
// No pair matrix is stored. Forward: one block per (row tile, column tile) of kTile x kTile pairs
// of one set pair; the features pass through shared memory kTile at a time, each thread keeps
// the squared distances (from differences: no cancellation) of kTile / kRowsPerPass of the
// tile's pairs in registers, exponentiates them and the block sums them into one partial per
// block. The host adds the partials in index order (deterministic, no float atomics). For a set
// against itself only tiles reaching above the diagonal work, and pairs i < j count twice.
//
// Backward: one block per row tile of x (then of y) walks every column tile of both sets. Per
// column tile it computes the distances once, keeps w G for the tile's pairs in shared memory,
// then adds sum_j w G (a_m - b_j) to its own rows of a float64 accumulator, kTile features at a
// time (only this block writes those rows): the gradient is a difference of sums over a whole
// batch, which a float32 accumulator would not hold to float32's tolerance. The upstream gradient
// scales the accumulator on the device afterwards: no .item(), no host synchronisation.
//
// Inputs are first converted to contiguous opmath copies (float32 for half types, float64 for
// float64): the O((B + B') D) extra memory.
#include <torch/library.h>

#include <tuple>

#include "checks.h"
#include "utils.cuh"

namespace gankernels {
namespace cuda {
namespace {

using at::Tensor;

constexpr int kTile = 32;                         // rows, columns and features per step
constexpr int kRowsPerPass = kBlock / kTile;      // 8 rows of the tile per thread row
constexpr int kPerThread = kTile / kRowsPerPass;  // 4 pairs per thread
static_assert(kBlock % kTile == 0 && kTile % kRowsPerPass == 0, "tile shape");

__device__ __forceinline__ float d_exp(float x) { return expf(x); }
__device__ __forceinline__ double d_exp(double x) { return exp(x); }

// Loads rows [r0, r0 + kTile) x features [f0, f0 + kTile) of a [n, D] matrix into `tile`
// (zeros outside), all threads of the block together.
template <typename T>
__device__ __forceinline__ void load_tile(T (*tile)[kTile + 1], const T* __restrict__ m, int64_t n,
                                          int64_t D, int64_t r0, int64_t f0) {
  for (int q = threadIdx.x; q < kTile * kTile; q += kBlock) {
    const int r = q / kTile, f = q % kTile;
    const int64_t row = r0 + r, feat = f0 + f;
    tile[r][f] = row < n && feat < D ? m[row * D + feat] : T(0);
  }
}

// d2[p] = ||a_(r0 + ty + p * kRowsPerPass) - b_(c0 + tx)||^2 for this thread's pairs.
template <typename T>
__device__ __forceinline__ void tile_distances(T (&d2)[kPerThread], T (*as)[kTile + 1],
                                               T (*bs)[kTile + 1], const T* __restrict__ a,
                                               int64_t na, const T* __restrict__ b, int64_t nb,
                                               int64_t D, int64_t r0, int64_t c0) {
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
#pragma unroll
  for (int p = 0; p < kPerThread; ++p) d2[p] = T(0);
  for (int64_t f0 = 0; f0 < D; f0 += kTile) {
    __syncthreads();  // the previous step's tiles are no longer read
    load_tile(as, a, na, D, r0, f0);
    load_tile(bs, b, nb, D, c0, f0);
    __syncthreads();
#pragma unroll 8
    for (int f = 0; f < kTile; ++f) {
      const T bv = bs[tx][f];
#pragma unroll
      for (int p = 0; p < kPerThread; ++p) {
        const T diff = as[ty + p * kRowsPerPass][f] - bv;
        d2[p] += diff * diff;
      }
    }
  }
}

template <typename T>
struct Bandwidths {
  const T* coef;    // -1 / (2 s^2), `count` of them
  const T* inv_sq;  // 1 / s^2
  int count;
};

template <typename T>
__device__ __forceinline__ T rbf(T d2, const Bandwidths<T>& bw, bool weighted) {
  T k = T(0);
  for (int s = 0; s < bw.count; ++s) {
    const T e = d_exp(bw.coef[s] * d2);
    k += weighted ? bw.inv_sq[s] * e : e;
  }
  return k;
}

// partials[blockIdx.y * gridDim.x + blockIdx.x] = the sum of k over the block's tile of pairs
// (pairs i < j only when `same`).
template <typename T>
__global__ void __launch_bounds__(kBlock)
    mmd2_pair_sum_kernel(const T* __restrict__ a, int64_t na, const T* __restrict__ b, int64_t nb,
                         int64_t D, Bandwidths<T> bw, bool same, T* __restrict__ partials) {
  __shared__ T as[kTile][kTile + 1];
  __shared__ T bs[kTile][kTile + 1];
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kTile;
  T* out = partials + static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x;
  if (same && c0 + kTile <= r0) {  // wholly below the diagonal; uniform over the block
    if (threadIdx.x == 0) *out = T(0);
    return;
  }
  T d2[kPerThread];
  tile_distances(d2, as, bs, a, na, b, nb, D, r0, c0);
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t col = c0 + tx;
  T sum = T(0);
#pragma unroll
  for (int p = 0; p < kPerThread; ++p) {
    const int64_t row = r0 + ty + p * kRowsPerPass;
    if (row < na && col < nb && (!same || col > row)) sum += rbf(d2[p], bw, false);
  }
  sum = block_sum<kBlock>(sum);
  if (threadIdx.x == 0) *out = sum;
}

// acc[m, :] += sum_j weight G(a_m, b_j) (a_m - b_j) for the block's row tile, over every column
// tile of b (j != m when b is a itself).
template <typename T>
__device__ __forceinline__ void add_set_gradient(const T* __restrict__ a, int64_t na,
                                                 const T* __restrict__ b, int64_t nb, int64_t D,
                                                 const Bandwidths<T>& bw, bool same, T weight,
                                                 int64_t r0, double* __restrict__ acc,
                                                 T (*as)[kTile + 1], T (*bs)[kTile + 1],
                                                 T (*gs)[kTile + 1]) {
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  for (int64_t c0 = 0; c0 < nb; c0 += kTile) {
    T d2[kPerThread];
    tile_distances(d2, as, bs, a, na, b, nb, D, r0, c0);
    const int64_t col = c0 + tx;
#pragma unroll
    for (int p = 0; p < kPerThread; ++p) {
      const int r = ty + p * kRowsPerPass;
      const int64_t row = r0 + r;
      const bool valid = row < na && col < nb && !(same && col == row);
      gs[r][tx] = valid ? weight * rbf(d2[p], bw, true) : T(0);
    }
    for (int64_t f0 = 0; f0 < D; f0 += kTile) {
      __syncthreads();  // gs is written; the distance tiles are no longer read
      load_tile(as, a, na, D, r0, f0);
      load_tile(bs, b, nb, D, c0, f0);
      __syncthreads();
      const int64_t feat = f0 + tx;
#pragma unroll
      for (int p = 0; p < kPerThread; ++p) {
        const int r = ty + p * kRowsPerPass;
        const T ar = as[r][tx];
        T step = T(0);
#pragma unroll 8
        for (int j = 0; j < kTile; ++j) step += gs[r][j] * (ar - bs[j][tx]);
        const int64_t row = r0 + r;
        if (row < na && feat < D) acc[row * D + feat] += static_cast<double>(step);
      }
    }
  }
}

// Four blocks per SM: without the bound ptxas settled on 48 registers and spilled on sm_90.
template <typename T>
__global__ void __launch_bounds__(kBlock, 4)
    mmd2_gradient_kernel(const T* __restrict__ a, int64_t na, const T* __restrict__ other,
                         int64_t n_other, int64_t D, Bandwidths<T> bw, T w_self, T w_other,
                         double* __restrict__ acc) {
  __shared__ T as[kTile][kTile + 1];
  __shared__ T bs[kTile][kTile + 1];
  __shared__ T gs[kTile][kTile + 1];
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kTile;
  add_set_gradient(a, na, a, na, D, bw, true, w_self, r0, acc, as, bs, gs);
  add_set_gradient(a, na, other, n_other, D, bw, false, w_other, r0, acc, as, bs, gs);
}

struct Weights {
  double xx, yy, xy;
};

Weights estimator_weights(int64_t n, int64_t m, bool unbiased) {
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  if (unbiased) return {1.0 / (dn * (dn - 1)), 1.0 / (dm * (dm - 1)), 1.0 / (dn * dm)};
  return {1.0 / (dn * dn), 1.0 / (dm * dm), 1.0 / (dn * dm)};
}

// [-1 / (2 s^2)..., 1 / s^2...] on x's device, in opmath.
Tensor bandwidth_table(at::ArrayRef<double> sigmas, const Tensor& like) {
  std::vector<double> values;
  for (double s : sigmas) values.push_back(-0.5 / (s * s));
  for (double s : sigmas) values.push_back(1.0 / (s * s));
  return at::tensor(values, at::TensorOptions().dtype(at::kDouble))
      .to(like.device(), like.scalar_type());
}

template <typename T>
Bandwidths<T> bandwidths_of(const Tensor& table, int count) {
  const T* p = table.const_data_ptr<T>();
  return {p, p + count, count};
}

// sum of k over the pairs of (a, b), i < j when `same`, as a float64 0-dim tensor.
template <typename T>
Tensor pair_sum(const Tensor& a, const Tensor& b, const Tensor& table, int count, bool same,
                cudaStream_t stream) {
  const int64_t na = a.size(0), nb = b.size(0), D = a.size(1);
  const dim3 grid(static_cast<unsigned>(ceil_div(na, kTile)),
                  static_cast<unsigned>(ceil_div(nb, kTile)));
  Tensor partials = at::empty({static_cast<int64_t>(grid.x) * grid.y}, a.options());
  mmd2_pair_sum_kernel<T><<<grid, kBlock, 0, stream>>>(
      a.const_data_ptr<T>(), na, b.const_data_ptr<T>(), nb, D, bandwidths_of<T>(table, count), same,
      partials.mutable_data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return partials.to(at::kDouble).sum();
}

Tensor mmd2_cuda(const Tensor& x, const Tensor& y, at::ArrayRef<double> sigmas, bool unbiased) {
  check_mmd2(x, y, sigmas, unbiased);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto opmath = opmath_scalar_type(x.scalar_type());
  const Tensor xo = x.to(opmath).contiguous(), yo = y.to(opmath).contiguous();
  const Tensor table = bandwidth_table(sigmas, xo);
  const int count = static_cast<int>(sigmas.size());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n = x.size(0), m = y.size(0);
  const Weights w = estimator_weights(n, m, unbiased);
  const double diagonal = unbiased ? 0.0 : static_cast<double>(count);  // k(a, a), exactly
  Tensor sxx, syy, sxy;
  AT_DISPATCH_FLOATING_TYPES(opmath, "mmd2", [&] {
    sxx = pair_sum<scalar_t>(xo, xo, table, count, true, stream) * 2 + n * diagonal;
    syy = pair_sum<scalar_t>(yo, yo, table, count, true, stream) * 2 + m * diagonal;
    sxy = pair_sum<scalar_t>(xo, yo, table, count, false, stream);
  });
  return (sxx * w.xx + syy * w.yy - sxy * (2 * w.xy)).to(opmath);
}

std::tuple<Tensor, Tensor> mmd2_backward_cuda(const Tensor& grad, const Tensor& x, const Tensor& y,
                                              at::ArrayRef<double> sigmas, bool unbiased) {
  check_mmd2_backward(grad, x, y, sigmas, unbiased);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto opmath = opmath_scalar_type(x.scalar_type());
  const Tensor xo = x.to(opmath).contiguous(), yo = y.to(opmath).contiguous();
  const Tensor table = bandwidth_table(sigmas, xo);
  const int count = static_cast<int>(sigmas.size());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n = x.size(0), m = y.size(0), D = x.size(1);
  const Weights w = estimator_weights(n, m, unbiased);
  // float64 accumulators: the gradient is a difference of sums over a whole batch.
  const auto acc_options = xo.options().dtype(at::kDouble);
  Tensor gx = at::zeros({n, D}, acc_options), gy = at::zeros({m, D}, acc_options);
  AT_DISPATCH_FLOATING_TYPES(opmath, "mmd2_backward", [&] {
    const Bandwidths<scalar_t> bw = bandwidths_of<scalar_t>(table, count);
    const auto cross = static_cast<scalar_t>(2 * w.xy);
    mmd2_gradient_kernel<scalar_t>
        <<<static_cast<unsigned>(ceil_div(n, kTile)), kBlock, 0, stream>>>(
            xo.const_data_ptr<scalar_t>(), n, yo.const_data_ptr<scalar_t>(), m, D, bw,
            static_cast<scalar_t>(-2 * w.xx), cross, gx.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    mmd2_gradient_kernel<scalar_t>
        <<<static_cast<unsigned>(ceil_div(m, kTile)), kBlock, 0, stream>>>(
            yo.const_data_ptr<scalar_t>(), m, xo.const_data_ptr<scalar_t>(), n, D, bw,
            static_cast<scalar_t>(-2 * w.yy), cross, gy.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  const Tensor g = grad.to(opmath);
  return {(gx * g).to(x.scalar_type()), (gy * g).to(y.scalar_type())};
}

}  // namespace
}  // namespace cuda

TORCH_LIBRARY_IMPL(gankernels, CUDA, m) {
  m.impl("mmd2", &cuda::mmd2_cuda);
  m.impl("mmd2_backward", &cuda::mmd2_backward_cuda);
}

}  // namespace gankernels
