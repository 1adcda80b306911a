// CPU kernels of adversarial_loss and adversarial_loss_backward (docs/math.md section 3). The
// loss of each (kind, role) is the two terms of csrc/loss_terms.h, each element's loss
// l(v) = sign * F(v - shift) + lin * v + constant, times its weight when there are weights.
//
// The forward is one parallel pass over the blocks of both arrays together ("mean", "sum"), or
// an elementwise pass per array ("none"); the backward is one elementwise pass writing
// scale * c_j * l'(v_j) + add, where c_j is the element's weight times, for "none", its upstream
// gradient (one opmath array per side, in the outputs' layout, made only when needed).
//
// Relativistic (RaGAN) is the one kind whose terms couple the two arrays: each term's shift is
// the (plain) mean of the other array, so the forward first runs a cheap pass for the two means,
// and the backward, whose gradient also holds the other term's derivative through that mean
// (dL/dx_k = alpha_k l_x'(x_k - m_y) - 1/N_x * sum_j beta_j l_y'(y_j - m_x), alpha and beta the
// per-element scales), runs a means pass and a derivative-sum pass before its elementwise pass.
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

// A dense view of one input array (or nothing) and its optional per-element coefficients
// (weights, times the upstream gradient for "none"): opmath values at the same offsets.
struct Array {
  const void* data = nullptr;
  const void* coef = nullptr;
  int64_t n = 0;
};

// A term's scalars in the accumulation type.
template <typename opmath_t>
struct TermArgs {
  opmath_t sign, shift, lin, constant;
};

template <typename opmath_t>
TermArgs<opmath_t> term_args(const Term& t) {
  return {static_cast<opmath_t>(t.sign), static_cast<opmath_t>(t.shift),
          static_cast<opmath_t>(t.lin), static_cast<opmath_t>(t.constant)};
}

// l(v) or l'(v) of a term at v.
template <Fn F, bool Deriv, typename opmath_t>
C10_ALWAYS_INLINE opmath_t term_at(opmath_t v, const TermArgs<opmath_t>& t) {
  const opmath_t x = v - t.shift;
  if (Deriv) return t.sign * fn_deriv(F, x) + t.lin;
  // A select, not lin * v alone: without smoothing an infinite v must not give 0 * inf = NaN.
  return t.sign * fn_value(F, x) + (t.lin != opmath_t(0) ? t.lin * v : opmath_t(0)) + t.constant;
}

using BlockSumFn = double (*)(const Array&, int64_t, int64_t, const Term&);

// sum_{begin <= j < end} c_j l(v_j) (or of l'): l over a tile of kTile values at a time (an
// elementwise loop, which vectorises), each tile summed in opmath_t lanes folded into double
// (cpu::lane_sum), tiles added in order. Computing l inside lane_sum's interleaved lanes
// measured 3x slower.
template <Fn F, bool Deriv, bool Weighted, typename scalar_t>
GK_CLONES double block_sum(const Array& a, int64_t begin, int64_t end, const Term& term) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int64_t kTile = 256;
  const scalar_t* v = static_cast<const scalar_t*>(a.data);
  const opmath_t* c = static_cast<const opmath_t*>(a.coef);
  const TermArgs<opmath_t> t = term_args<opmath_t>(term);
  opmath_t values[kTile];
  double total = 0.0;
  for (int64_t s = begin; s < end; s += kTile) {
    const int64_t len = std::min(kTile, end - s);
    for (int64_t j = 0; j < len; ++j) {
      const opmath_t l = term_at<F, Deriv>(static_cast<opmath_t>(v[s + j]), t);
      values[j] = Weighted ? c[s + j] * l : l;
    }
    total += cpu::lane_sum<opmath_t>(len, [&](int64_t j) { return values[j]; });
  }
  return total;
}

// with_fn (loss_terms.h) turns the runtime Fn into the template argument once per array.
template <bool Deriv, typename scalar_t>
BlockSumFn pick_sum(const Term& t, bool weighted) {
  return with_fn(t.fn, [&](auto tag) -> BlockSumFn {
    constexpr Fn F = decltype(tag)::value;
    return weighted ? &block_sum<F, Deriv, true, scalar_t> : &block_sum<F, Deriv, false, scalar_t>;
  });
}

inline int64_t num_blocks(int64_t n) { return (n + cpu::kBlock - 1) / cpu::kBlock; }

// (sum over real, sum over fake) of c l(v) (or of c l'(v) when `deriv`) in ONE parallel pass
// over the blocks of both arrays. Block partials are added in block order: the result is the
// same for every thread count.
template <typename scalar_t>
std::pair<double, double> reduce_both(const Array& real, const Term& rt, const Array& fake,
                                      const Term& ft, bool deriv) {
  auto pick = [&](const Array& a, const Term& t) {
    return deriv ? pick_sum<true, scalar_t>(t, a.coef != nullptr)
                 : pick_sum<false, scalar_t>(t, a.coef != nullptr);
  };
  const BlockSumFn rsum = real.data ? pick(real, rt) : nullptr;
  const BlockSumFn fsum = pick(fake, ft);
  const int64_t nr = real.data ? num_blocks(real.n) : 0;
  const int64_t nb = nr + num_blocks(fake.n);
  auto block = [&](int64_t k) {
    if (k < nr) {
      const int64_t begin = k * cpu::kBlock;
      return rsum(real, begin, std::min(real.n, begin + cpu::kBlock), rt);
    }
    const int64_t begin = (k - nr) * cpu::kBlock;
    return fsum(fake, begin, std::min(fake.n, begin + cpu::kBlock), ft);
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

// One elementwise pass of a term: out_j = scale * c_j * l(v_j) + add (Deriv: l'), into `out`
// (scalar_t for a gradient, opmath_t for the per-element losses of "none"), or added to it.
struct ElementJob {
  Array in;
  void* out = nullptr;
  Term term;
  double scale = 1.0, add = 0.0;
};

using ElementFn = void (*)(const ElementJob&, int64_t, int64_t);

template <Fn F, bool Deriv, bool Weighted, bool Accumulate, typename scalar_t, typename out_t>
GK_CLONES void block_elements(const ElementJob& job, int64_t begin, int64_t end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* v = static_cast<const scalar_t*>(job.in.data);
  const opmath_t* c = static_cast<const opmath_t*>(job.in.coef);
  out_t* out = static_cast<out_t*>(job.out);
  const TermArgs<opmath_t> t = term_args<opmath_t>(job.term);
  const opmath_t sc = static_cast<opmath_t>(job.scale), ad = static_cast<opmath_t>(job.add);
  for (int64_t j = begin; j < end; ++j) {
    const opmath_t l = term_at<F, Deriv>(static_cast<opmath_t>(v[j]), t);
    const opmath_t value = sc * (Weighted ? c[j] * l : l) + ad;
    if (Accumulate) {
      out[j] = static_cast<out_t>(static_cast<opmath_t>(out[j]) + value);
    } else {
      out[j] = static_cast<out_t>(value);
    }
  }
}

template <bool Deriv, bool Accumulate, typename scalar_t, typename out_t>
ElementFn pick_elements(const ElementJob& job) {
  return with_fn(job.term.fn, [&](auto tag) -> ElementFn {
    constexpr Fn F = decltype(tag)::value;
    return job.in.coef ? &block_elements<F, Deriv, true, Accumulate, scalar_t, out_t>
                       : &block_elements<F, Deriv, false, Accumulate, scalar_t, out_t>;
  });
}

// Runs two elementwise jobs (the first may be absent: fn null) as one parallel pass.
void run_elements(ElementFn fr, const ElementJob& r, ElementFn fg, const ElementJob& g) {
  const int64_t nr = fr ? r.in.n : 0;
  auto range = [&](int64_t b, int64_t e) {
    if (b < nr) fr(r, b, std::min(e, nr));
    if (e > nr) fg(g, std::max(b, nr) - nr, e - nr);
  };
  const int64_t total = nr + g.in.n;
  if (total <= cpu::kGrain) {
    range(0, total);
  } else {
    at::parallel_for(0, total, cpu::kGrain, range);
  }
}

// The argument checks of gankernels/ops/_checks.py::check_adversarial_loss, same messages.
struct Checked {
  Plan plan;
  Reduction reduction;
};

Checked check_and_plan(const std::optional<at::Tensor>& real_out, const at::Tensor& fake_out,
                       c10::string_view kind, c10::string_view role, double a, double b, double c,
                       bool nonsaturating, double label_smoothing, double margin,
                       const std::optional<at::Tensor>& real_weights,
                       const std::optional<at::Tensor>& fake_weights, c10::string_view reduction) {
  const LossChoice choice = check_adversarial_loss(real_out, fake_out, kind, role, label_smoothing,
                                                   margin, real_weights, fake_weights, reduction);
  TORCH_CHECK(fake_out.device().is_cpu(), "adversarial_loss: the CPU kernel got fake_out on ",
              fake_out.device());
  return {make_plan(choice.kind, choice.critic, a, b, c, nonsaturating, label_smoothing, margin),
          choice.reduction};
}

Array array_of(const at::Tensor& t, const at::Tensor& coef) {
  return {t.data_ptr(), coef.defined() ? coef.data_ptr() : nullptr, t.numel()};
}

// 1/n for "mean", 1 otherwise.
double per_element(Reduction r, int64_t n) {
  return r == Reduction::Mean ? 1.0 / static_cast<double>(n) : 1.0;
}

// Fills the shifts of a relativistic plan: each term is shifted by the other array's mean.
template <typename scalar_t>
void relativistic_shifts(Plan& p, const Array& real, const Array& fake) {
  const Term id{Fn::Identity, 1.0};
  const Array r{real.data, nullptr, real.n}, f{fake.data, nullptr, fake.n};
  const auto [sum_r, sum_g] = reduce_both<scalar_t>(r, id, f, id, /*deriv=*/false);
  p.real.shift = sum_g / static_cast<double>(fake.n);
  p.fake.shift = sum_r / static_cast<double>(real.n);
}

// Real and fake in one layout for "none" (the output's), else each dense in its own.
struct Inputs {
  at::Tensor real, fake;
};

Inputs inputs_for(const Plan& plan, Reduction reduction, const std::optional<at::Tensor>& real_out,
                  const at::Tensor& fake_out) {
  Inputs in;
  in.fake = dense(fake_out);
  if (plan.use_real) {
    in.real = reduction == Reduction::None ? in_layout_of(*real_out, in.fake) : dense(*real_out);
  }
  return in;
}

at::Tensor adversarial_loss_cpu(const std::optional<at::Tensor>& real_out,
                                const at::Tensor& fake_out, c10::string_view kind,
                                c10::string_view role, double a, double b, double c,
                                bool nonsaturating, double label_smoothing, double margin,
                                const std::optional<at::Tensor>& real_weights,
                                const std::optional<at::Tensor>& fake_weights,
                                c10::string_view reduction) {
  auto [plan, red] = check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating,
                                    label_smoothing, margin, real_weights, fake_weights, reduction);
  const auto [real, fake] = inputs_for(plan, red, real_out, fake_out);
  const auto opmath = opmath_scalar_type(fake_out.scalar_type());
  const at::Tensor cf = loss_coefficients(fake_weights, at::Tensor(), fake, opmath);
  const at::Tensor cr =
      plan.use_real ? loss_coefficients(real_weights, at::Tensor(), real, opmath) : at::Tensor();
  const Array fa = array_of(fake, cf);
  const Array ra = plan.use_real ? array_of(real, cr) : Array{};
  if (red == Reduction::None) {
    at::Tensor out = at::empty_like(fake_out, fake_out.options().dtype(opmath));
    at::Tensor buffer = same_layout(out, fake) ? out : at::empty_like(fake, out.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss_cpu", [&] {
          using opmath_t = at::opmath_type<scalar_t>;
          if (plan.relativistic) relativistic_shifts<scalar_t>(plan, ra, fa);
          const ElementJob jf{fa, buffer.data_ptr(), plan.fake};
          run_elements(nullptr, jf, pick_elements<false, false, scalar_t, opmath_t>(jf), jf);
          if (plan.use_real) {
            const ElementJob jr{ra, buffer.data_ptr(), plan.real};
            run_elements(nullptr, jr, pick_elements<false, true, scalar_t, opmath_t>(jr), jr);
          }
        });
    if (!buffer.is_same(out)) out.copy_(buffer);
    return out;
  }
  at::Tensor loss = at::empty({}, fake_out.options().dtype(opmath));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, fake.scalar_type(), "adversarial_loss_cpu", [&] {
        if (plan.relativistic) relativistic_shifts<scalar_t>(plan, ra, fa);
        const auto [sr, sg] = reduce_both<scalar_t>(ra, plan.real, fa, plan.fake, false);
        double value = sg * per_element(red, fa.n);
        if (plan.use_real) value += sr * per_element(red, ra.n);
        if (opmath == at::kDouble) {
          *loss.data_ptr<double>() = value;
        } else {
          *loss.data_ptr<float>() = static_cast<float>(value);
        }
      });
  return loss;
}

// The upstream gradient of a scalar loss, one element of any floating dtype, read on the host:
// on the CPU this is a plain memory read, no synchronisation.
double read_grad_loss(const at::Tensor& grad_loss) {
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
    double c, bool nonsaturating, double label_smoothing, double margin,
    const std::optional<at::Tensor>& real_weights, const std::optional<at::Tensor>& fake_weights,
    c10::string_view reduction) {
  auto [plan, red] = check_and_plan(real_out, fake_out, kind, role, a, b, c, nonsaturating,
                                    label_smoothing, margin, real_weights, fake_weights, reduction);
  check_adversarial_loss_grad(grad_loss, fake_out, red);
  const auto [real, fake] = inputs_for(plan, red, real_out, fake_out);
  const auto opmath = opmath_scalar_type(fake_out.scalar_type());
  // "none": the upstream gradient is per element, part of each side's coefficients.
  const at::Tensor grad = red == Reduction::None ? grad_loss : at::Tensor();
  const double gl = red == Reduction::None ? 1.0 : read_grad_loss(grad_loss);
  const at::Tensor cf = loss_coefficients(fake_weights, grad, fake, opmath);
  const at::Tensor cr =
      plan.use_real ? loss_coefficients(real_weights, grad, real, opmath) : at::Tensor();
  const Array fa = array_of(fake, cf);
  const Array ra = plan.use_real ? array_of(real, cr) : Array{};

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
        const double scale_g = gl * per_element(red, fa.n);
        const double scale_r = plan.use_real ? gl * per_element(red, ra.n) : 0.0;
        ElementJob jr, jf{fa, gf.buffer.data_ptr(), plan.fake, scale_g, 0.0};
        if (plan.use_real) jr = {ra, gr.buffer.data_ptr(), plan.real, scale_r, 0.0};
        if (plan.relativistic) {
          relativistic_shifts<scalar_t>(plan, ra, fa);
          jr.term.shift = plan.real.shift;
          jf.term.shift = plan.fake.shift;
          // Each array's mean enters the other term: d/dx_k of sum_j beta_j l_y(y_j - m_x) is
          // -sum_j beta_j l_y'(y_j - m_x) / N_x.
          const auto [dr, dg] = reduce_both<scalar_t>(ra, plan.real, fa, plan.fake, true);
          jr.add = -scale_g * dg / static_cast<double>(ra.n);
          jf.add = -scale_r * dr / static_cast<double>(fa.n);
        }
        const ElementFn fr =
            plan.use_real ? pick_elements<true, false, scalar_t, scalar_t>(jr) : nullptr;
        run_elements(fr, jr, pick_elements<true, false, scalar_t, scalar_t>(jf), jf);
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
