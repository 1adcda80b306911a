// CPU kernel of ema_ (docs/math.md section 4): t <- t + w * (s - t), w = 1 - decay, in place for
// every (target, source) pair of two lists, in one call.
//
// As clip_ does (clip.cpp), the work is split over the total element count of all the pairs
// together, so a generator of many small tensors is one parallel region, not one per tensor.
// Each element is read once from each list and written once, computed in the opmath type
// (float32 for half types) as torch.lerp computes it and rounded once: a loop the compiler
// vectorises. A pair whose target
// is not dense, or whose source is laid out differently, goes through one copy of each.
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "checks.h"
#include "cpu/partition.h"
#include "layout.h"
#include "opmath.h"

namespace gankernels {
namespace {

// One dense pair: the target's memory and the source's at the same offsets.
struct Pair {
  void* target;
  const void* source;
  int64_t n;
  at::ScalarType dtype;
};

// torch.lerp's two forms (exact at w = 0 and w = 1), the choice made once per range.
template <typename scalar_t>
GK_CLONES void lerp_range(scalar_t* __restrict t, const scalar_t* __restrict s, int64_t n,
                          at::opmath_type<scalar_t> w) {
  using opmath_t = at::opmath_type<scalar_t>;
  if (w < opmath_t(0.5)) {
    for (int64_t i = 0; i < n; ++i) {
      const opmath_t x = static_cast<opmath_t>(t[i]);
      t[i] = static_cast<scalar_t>(x + w * (static_cast<opmath_t>(s[i]) - x));
    }
  } else {
    const opmath_t v = opmath_t(1) - w;
    for (int64_t i = 0; i < n; ++i) {
      const opmath_t y = static_cast<opmath_t>(s[i]);
      t[i] = static_cast<scalar_t>(y - (y - static_cast<opmath_t>(t[i])) * v);
    }
  }
}

void update(const Pair& p, int64_t begin, int64_t len, double w) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "ema_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    lerp_range(static_cast<scalar_t*>(p.target) + begin,
               static_cast<const scalar_t*>(p.source) + begin, len, static_cast<opmath_t>(w));
  });
}

void ema_cpu(at::TensorList target, at::TensorList source, double decay) {
  check_ema(target, source, decay);
  TORCH_CHECK(target[0].device().is_cpu(), "ema_: the CPU kernel got target on ",
              target[0].device());
  const double w = 1.0 - decay;

  std::vector<Pair> pairs;
  std::vector<int64_t> offsets;  // offsets[k]: where pair k starts in the concatenation
  std::vector<size_t> other;     // pairs updated through copies
  int64_t total = 0;
  for (size_t i = 0; i < target.size(); ++i) {
    const at::Tensor& t = target[i];
    if (t.numel() == 0) continue;
    if (!t.is_non_overlapping_and_dense() || !same_layout(t, source[i]) ||
        !source[i].is_non_overlapping_and_dense()) {
      other.push_back(i);
      continue;
    }
    pairs.push_back({t.data_ptr(), source[i].const_data_ptr(), t.numel(), t.scalar_type()});
    offsets.push_back(total);
    total += t.numel();
  }

  // Updates [begin, end) of the concatenation of every pair.
  auto run = [&](int64_t begin, int64_t end) {
    size_t k = static_cast<size_t>(std::upper_bound(offsets.begin(), offsets.end(), begin) -
                                   offsets.begin() - 1);
    for (int64_t pos = begin; pos < end; ++k) {
      const int64_t start = offsets[k];
      const int64_t stop = std::min(end, start + pairs[k].n);
      update(pairs[k], pos - start, stop - pos, w);
      pos = stop;
    }
  };
  if (total > 0) {
    if (total <= 2 * cpu::kGrain) {
      run(0, total);
    } else {
      at::parallel_for(0, total, cpu::kGrain, run);
    }
  }

  for (size_t i : other) {
    const at::Tensor& t = target[i];
    at::Tensor tmp = t.contiguous();
    const at::Tensor src = source[i].contiguous();
    update({tmp.data_ptr(), src.const_data_ptr(), tmp.numel(), tmp.scalar_type()}, 0, tmp.numel(),
           w);
    if (!tmp.is_same(t)) t.copy_(tmp);
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, CPU, m) { m.impl("ema_", &ema_cpu); }

}  // namespace gankernels
