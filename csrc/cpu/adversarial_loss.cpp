// CPU kernels of adversarial_loss and adversarial_loss_backward (docs/math.md section 3). The
// loss of each (kind, role) is the two mean terms of csrc/loss_terms.h.
//
// The forward is one parallel pass over the blocks of both arrays together; the backward is one
// elementwise pass writing sign/N * F'(v - shift).
//
// Relativistic (RaGAN) is the one kind whose terms couple the two arrays: each term's shift is
// the mean of the other array, so the forward first runs a cheap pass for the two means, and
// the backward, whose gradient also holds the mean of the other term's derivative
// (dL/dx_k = 1/N_x * [F_x'(x_k - m_y) - sum_j F_y'(y_j - m_x) / N_y]), runs a means pass and a
// derivative-sum pass before its elementwise pass.
//
// Sums accumulate in double per fixed block of cpu::kBlock elements and the block partials are
// added in block order, so the result does not depend on the thread count. Half inputs are
// computed in float32 (opmath), float64 in float64.
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "checks.h"
#include "cpu/partition.h"
#include "layout.h"
#include "loss_terms.h"
#include "opmath.h"

namespace gankernels {
namespace {

// A contiguous view of one input array (or nothing).
struct Array {
  const void* data = nullptr;
  int64_t n = 0;
};

template <typename scalar_t>
using BlockSumFn = double (*)(const void*, int64_t, int64_t, double);

// sum_{begin <= j < end} F(v_j - shift) (or F'): F over a tile of kTile values at a time (an
// elementwise loop, which vectorises), each tile summed in opmath_t lanes folded into double
// (cpu::lane_sum), tiles added in order. Computing F inside lane_sum's interleaved lanes
// measured 3x slower.
template <Fn F, bool Deriv, typename scalar_t>
GK_CLONES double block_sum(const void* data, int64_t begin, int64_t end, double shift) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int64_t kTile = 256;
  const scalar_t* v = static_cast<const scalar_t*>(data);
  const opmath_t s = static_cast<opmath_t>(shift);
  opmath_t values[kTile];
  double total = 0.0;
  for (int64_t t = begin; t < end; t += kTile) {
    const int64_t len = std::min(kTile, end - t);
    for (int64_t j = 0; j < len; ++j) {
      const opmath_t x = static_cast<opmath_t>(v[t + j]) - s;
      values[j] = Deriv ? fn_deriv(F, x) : fn_value(F, x);
    }
    total += cpu::lane_sum<opmath_t>(len, [&](int64_t j) { return values[j]; });
  }
  return total;
}

template <bool Deriv, typename scalar_t>
BlockSumFn<scalar_t> pick_sum(Fn f) {
  switch (f) {
#define GK_CASE(name) \
  case Fn::name: return &block_sum<Fn::name, Deriv, scalar_t>;
    GK_CASE(Softplus)
    GK_CASE(SoftplusNeg)
    GK_CASE(Identity)
    GK_CASE(ReluOneMinus)
    GK_CASE(ReluOnePlus)
    GK_CASE(HalfSquare)
    GK_CASE(Exp)
    GK_CASE(ExpNeg)
    GK_CASE(Expm1)
    GK_CASE(Expm1Neg)
    GK_CASE(PearsonConj)
    GK_CASE(NeymanConj)
    GK_CASE(HalfTanh)
#undef GK_CASE
  }
  TORCH_CHECK(false, "adversarial_loss: internal error: unknown term function");
}

inline int64_t num_blocks(int64_t n) { return (n + cpu::kBlock - 1) / cpu::kBlock; }

// (sum over real, sum over fake) of F(v - shift) (or of F' when `deriv`) in ONE parallel pass
// over the blocks of both arrays. Block partials are added in block order: the result is the
// same for every thread count.
template <typename scalar_t>
std::pair<double, double> reduce_both(const Array& real, const Term& rt, const Array& fake,
                                      const Term& ft, bool deriv) {
  const BlockSumFn<scalar_t> rsum =
      real.data ? (deriv ? pick_sum<true, scalar_t>(rt.fn) : pick_sum<false, scalar_t>(rt.fn))
                : nullptr;
  const BlockSumFn<scalar_t> fsum =
      deriv ? pick_sum<true, scalar_t>(ft.fn) : pick_sum<false, scalar_t>(ft.fn);
  const int64_t nr = real.data ? num_blocks(real.n) : 0;
  const int64_t nb = nr + num_blocks(fake.n);
  auto block = [&](int64_t k) {
    if (k < nr) {
      const int64_t begin = k * cpu::kBlock;
      return rsum(real.data, begin, std::min(real.n, begin + cpu::kBlock), rt.shift);
    }
    const int64_t begin = (k - nr) * cpu::kBlock;
    return fsum(fake.data, begin, std::min(fake.n, begin + cpu::kBlock), ft.shift);
  };
  double sr = 0.0, sg = 0.0;
  if (nb == 1 || (real.data ? real.n : 0) + fake.n <= cpu::kGrain) {
    // The same additions in the same order as the parallel branch, without a parallel region.
    for (int64_t k = 0; k < nb; ++k) (k < nr ? sr : sg) += block(k);
    return {sr, sg};
  }
  std::vector<double> partial(static_cast<size_t>(nb));
  at::parallel_for(0, nb, std::max<int64_t>(1, cpu::kGrain / cpu::kBlock),
                   [&](int64_t b0, int64_t b1) {
                     for (int64_t k = b0; k < b1; ++k) partial[k] = block(k);
                   });
  for (int64_t k = 0; k < nb; ++k) (k < nr ? sr : sg) += partial[k];
  return {sr, sg};
}

// out_j = scale * F'(v_j - shift) + add, for begin <= j < end.
template <Fn F, typename scalar_t>
GK_CLONES void block_grad(const void* in, void* out, int64_t begin, int64_t end, double shift,
                          double scale, double add) {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* v = static_cast<const scalar_t*>(in);
  scalar_t* g = static_cast<scalar_t*>(out);
  const opmath_t s = static_cast<opmath_t>(shift), sc = static_cast<opmath_t>(scale),
                 ad = static_cast<opmath_t>(add);
  for (int64_t j = begin; j < end; ++j) {
    g[j] = static_cast<scalar_t>(sc * fn_deriv(F, static_cast<opmath_t>(v[j]) - s) + ad);
  }
}

using BlockGradFn = void (*)(const void*, void*, int64_t, int64_t, double, double, double);

template <typename scalar_t>
BlockGradFn pick_grad(Fn f) {
  switch (f) {
#define GK_CASE(name) \
  case Fn::name: return &block_grad<Fn::name, scalar_t>;
    GK_CASE(Softplus)
    GK_CASE(SoftplusNeg)
    GK_CASE(Identity)
    GK_CASE(ReluOneMinus)
    GK_CASE(ReluOnePlus)
    GK_CASE(HalfSquare)
    GK_CASE(Exp)
    GK_CASE(ExpNeg)
    GK_CASE(Expm1)
    GK_CASE(Expm1Neg)
    GK_CASE(PearsonConj)
    GK_CASE(NeymanConj)
    GK_CASE(HalfTanh)
#undef GK_CASE
  }
  TORCH_CHECK(false, "adversarial_loss: internal error: unknown term function");
}

// The elementwise gradient of one term (and, for relativistic, the coupling `add`).
struct GradJob {
  const void* in = nullptr;
  void* out = nullptr;
  int64_t n = 0;
  BlockGradFn fn = nullptr;
  double shift = 0.0, scale = 0.0, add = 0.0;
};

// One parallel elementwise pass over both gradient outputs.
void run_grads(const GradJob& r, const GradJob& g) {
  const int64_t nr = r.fn ? r.n : 0;
  auto range = [&](int64_t b, int64_t e) {
    if (b < nr) r.fn(r.in, r.out, b, std::min(e, nr), r.shift, r.scale, r.add);
    if (e > nr) g.fn(g.in, g.out, std::max(b, nr) - nr, e - nr, g.shift, g.scale, g.add);
  };
  const int64_t total = nr + g.n;
  if (total <= cpu::kGrain) {
    range(0, total);
  } else {
    at::parallel_for(0, total, cpu::kGrain, range);
  }
}

// The argument checks of gankernels/ops/_checks.py::check_adversarial_loss, same messages.
Plan check_and_plan(const std::optional<at::Tensor>& real_out, const at::Tensor& fake_out,
                    c10::string_view kind, c10::string_view role, double a, double b, double c,
                    bool nonsaturating) {
  const LossChoice choice = check_adversarial_loss(real_out, fake_out, kind, role);
  TORCH_CHECK(fake_out.device().is_cpu(), "adversarial_loss: the CPU kernel got fake_out on ",
              fake_out.device());
  return make_plan(choice.kind, choice.critic, a, b, c, nonsaturating);
}

// A dense tensor whose memory can be walked as a flat array (any dim order), else a copy.
at::Tensor dense(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() ? t : t.contiguous();
}

Array array_of(const at::Tensor& t) { return {t.data_ptr(), t.numel()}; }

// Fills the shifts of a relativistic plan: each term is shifted by the other array's mean.
template <typename scalar_t>
void relativistic_shifts(Plan& p, const Array& real, const Array& fake) {
  const Term id{Fn::Identity, 1.0};
  const auto [sum_r, sum_g] = reduce_both<scalar_t>(real, id, fake, id, /*deriv=*/false);
  p.real.shift = sum_g / static_cast<double>(fake.n);
  p.fake.shift = sum_r / static_cast<double>(real.n);
}

at::Tensor adversarial_loss_cpu(const std::optional<at::Tensor>& real_out,
                                const at::Tensor& fake_out, c10::string_view kind,
                                c10::string_view role, double a, double b, double c,
                                bool nonsaturating) {
  Plan plan = check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating);
  const at::Tensor fake = dense(fake_out);
  const at::Tensor real = plan.use_real ? dense(*real_out) : at::Tensor();
  const Array fa = array_of(fake);
  const Array ra = plan.use_real ? array_of(real) : Array{};
  const auto opmath = opmath_scalar_type(fake_out.scalar_type());
  at::Tensor loss = at::empty({}, fake_out.options().dtype(opmath));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss_cpu", [&] {
        if (plan.relativistic) relativistic_shifts<scalar_t>(plan, ra, fa);
        const auto [sr, sg] = reduce_both<scalar_t>(ra, plan.real, fa, plan.fake, false);
        double value = plan.fake.sign * sg / static_cast<double>(fa.n) + plan.fake.constant;
        if (plan.use_real)
          value += plan.real.sign * sr / static_cast<double>(ra.n) + plan.real.constant;
        if (opmath == at::kDouble) {
          *loss.data_ptr<double>() = value;
        } else {
          *loss.data_ptr<float>() = static_cast<float>(value);
        }
      });
  return loss;
}

// The upstream gradient, a one-element tensor of any floating dtype, read on the host: on the
// CPU this is a plain memory read, no synchronisation.
double read_grad_loss(const at::Tensor& grad_loss, const at::Tensor& fake_out) {
  check_adversarial_loss_grad(grad_loss, fake_out);
  double value = 0.0;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_loss.scalar_type(), "adversarial_loss_grad_loss",
      [&] { value = static_cast<double>(*grad_loss.const_data_ptr<scalar_t>()); });
  return value;
}

// The output gradient in `input`'s layout (empty_like, as the fake kernel), with a buffer in the
// dense source's layout to compute into when the two differ.
struct GradOut {
  at::Tensor out;
  at::Tensor buffer;
};

GradOut grad_out_for(const at::Tensor& input, const at::Tensor& src) {
  at::Tensor out = at::empty_like(input);
  if (same_layout(out, src)) return {out, out};
  return {out, at::empty_like(src)};
}

std::tuple<at::Tensor, at::Tensor> adversarial_loss_backward_cpu(
    const at::Tensor& grad_loss, const std::optional<at::Tensor>& real_out,
    const at::Tensor& fake_out, c10::string_view kind, c10::string_view role, double a, double b,
    double c, bool nonsaturating) {
  Plan plan = check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating);
  const double gl = read_grad_loss(grad_loss, fake_out);
  const at::Tensor fake = dense(fake_out);
  const at::Tensor real = plan.use_real ? dense(*real_out) : at::Tensor();
  const Array fa = array_of(fake);
  const Array ra = plan.use_real ? array_of(real) : Array{};

  GradOut gf = grad_out_for(fake_out, fake);
  GradOut gr;
  if (!real_out.has_value()) {
    gr.out = at::empty({0}, fake_out.options());
  } else if (!plan.use_real) {
    gr.out = at::zeros_like(*real_out);  // a generator loss that does not read v_r
  } else {
    gr = grad_out_for(*real_out, real);
  }

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss_backward_cpu", [&] {
        GradJob jr, jf;
        jf = {fa.data, gf.buffer.data_ptr(),
              fa.n,    pick_grad<scalar_t>(plan.fake.fn),
              0.0,     gl * plan.fake.sign / static_cast<double>(fa.n),
              0.0};
        if (plan.use_real) {
          jr = {ra.data, gr.buffer.data_ptr(),
                ra.n,    pick_grad<scalar_t>(plan.real.fn),
                0.0,     gl * plan.real.sign / static_cast<double>(ra.n),
                0.0};
        }
        if (plan.relativistic) {
          relativistic_shifts<scalar_t>(plan, ra, fa);
          // Each array's mean enters the other term: d/dx_k of mean_j F_y(y_j - m_x) is
          // -mean_j F_y'(y_j - m_x) / N_x.
          const auto [dr, dg] = reduce_both<scalar_t>(ra, plan.real, fa, plan.fake, true);
          jr.shift = plan.real.shift;
          jf.shift = plan.fake.shift;
          jr.add =
              -gl * plan.fake.sign * dg / static_cast<double>(fa.n) / static_cast<double>(ra.n);
          jf.add =
              -gl * plan.real.sign * dr / static_cast<double>(ra.n) / static_cast<double>(fa.n);
        } else {
          jr.shift = plan.real.shift;
          jf.shift = plan.fake.shift;
        }
        run_grads(jr, jf);
      });
  if (!gf.out.is_same(gf.buffer)) gf.out.copy_(gf.buffer);
  if (gr.buffer.defined() && !gr.out.is_same(gr.buffer)) gr.out.copy_(gr.buffer);
  return {gr.out, gf.out};
}

}  // namespace

TORCH_LIBRARY_IMPL(gankernels, CPU, m) {
  m.impl("adversarial_loss", &adversarial_loss_cpu);
  m.impl("adversarial_loss_backward", &adversarial_loss_backward_cpu);
}

}  // namespace gankernels
