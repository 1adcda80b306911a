// The adversarial losses of docs/math.md section 3 as data, shared by the CPU and CUDA kernels.
//
// Every kind and role is a sum of at most two terms, one over the real outputs v_r and one over
// the generated outputs v_g, each the (weighted) mean, sum or list of the per-element loss
//
//     l(v) = sign * F(v - shift) + lin * v + constant
//
// with F from the small set `Fn` (softplus, identity, hinge, half square, the closed-form f-GAN
// composites f*(g_f(v)) and -g_f(v), ...). `make_plan` maps (kind, role) to its two terms;
// `fn_value` and `fn_deriv` evaluate F and F' in float or double, on the host or the device.
// Relativistic (RaGAN) is the one kind whose terms couple the arrays: each term's shift is the
// other array's mean, filled in by the kernels after a means pass.
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "host_math.h"
#include "loss_kinds.h"

namespace gankernels {

// Everything here is always inlined: an out-of-line call in a CPU loop stops its vectorisation.
//
// Math by overload in the accumulation type, callable from host and device code alike. Host
// float32 exp, expm1, log1p and tanh are the vectorisable forms of host_math.h; everything else
// is libm's or CUDA's own.
C10_HOST_DEVICE C10_ALWAYS_INLINE float loss_exp(float x) {
#ifdef __CUDA_ARCH__
  return ::expf(x);
#else
  return host_math::exp(x);
#endif
}
C10_HOST_DEVICE C10_ALWAYS_INLINE double loss_exp(double x) { return ::exp(x); }
// log1p(t) for 0 <= t <= 1.
C10_HOST_DEVICE C10_ALWAYS_INLINE float loss_log1p_unit(float t) {
#ifdef __CUDA_ARCH__
  return ::log1pf(t);
#else
  return host_math::log1p_unit(t);
#endif
}
C10_HOST_DEVICE C10_ALWAYS_INLINE double loss_log1p_unit(double t) { return ::log1p(t); }
C10_HOST_DEVICE C10_ALWAYS_INLINE float loss_expm1(float x) {
#ifdef __CUDA_ARCH__
  return ::expm1f(x);
#else
  return host_math::expm1(x);
#endif
}
C10_HOST_DEVICE C10_ALWAYS_INLINE double loss_expm1(double x) { return ::expm1(x); }
C10_HOST_DEVICE C10_ALWAYS_INLINE float loss_tanh(float x) {
#ifdef __CUDA_ARCH__
  return ::tanhf(x);
#else
  return host_math::tanh(x);
#endif
}
C10_HOST_DEVICE C10_ALWAYS_INLINE double loss_tanh(double x) { return ::tanh(x); }
C10_HOST_DEVICE C10_ALWAYS_INLINE float loss_abs(float x) { return ::fabsf(x); }
C10_HOST_DEVICE C10_ALWAYS_INLINE double loss_abs(double x) { return ::fabs(x); }

// max(a, b) that returns a NaN `a` (as relu and clamp_min propagate NaN).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T loss_max(T a, T b) {
  return a < b ? b : a;
}

// Stable softplus: max(x, 0) + log1p(exp(-|x|)); never overflows, exact for large |x|.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T softplus(T x) {
  return loss_max(x, T(0)) + loss_log1p_unit(loss_exp(-loss_abs(x)));
}

// 1 / (1 + e) for 0 <= e <= 1. On the device, float32 takes the hardware reciprocal (within
// 1 ulp; its argument is in [1, 2]) instead of the IEEE division, whose out-of-line slow path
// costs every loss kernel a stack frame.
C10_HOST_DEVICE C10_ALWAYS_INLINE float loss_inv_one_plus(float e) {
#ifdef __CUDA_ARCH__
  float r;
  asm("rcp.approx.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return r;
#else
  return 1.0f / (1.0f + e);
#endif
}
C10_HOST_DEVICE C10_ALWAYS_INLINE double loss_inv_one_plus(double e) { return 1.0 / (1.0 + e); }

// Stable sigmoid: exp is only ever taken of a non-positive number. Written as a select rather
// than a branch, so that CPU loops over it vectorise.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T sigmoid(T x) {
  const T e = loss_exp(-loss_abs(x));
  const T d = loss_inv_one_plus(e);
  return x >= T(0) ? d : e * d;
}

// The elementwise functions F of a loss term, evaluated at x = v - shift.
enum class Fn : int {
  Softplus,      // sp(x)                      F' = sigmoid(x)
  SoftplusNeg,   // sp(-x)                     F' = -sigmoid(-x)
  Identity,      // x                          F' = 1
  ReluOneMinus,  // relu(1 - x)                F' = -[not 1 - x <= 0]
  ReluOnePlus,   // relu(1 + x)                F' = [not 1 + x <= 0]
  HalfSquare,    // x^2 / 2                    F' = x
  Exp,           // exp(x)                     F' = exp(x)
  ExpNeg,        // exp(-x)                    F' = -exp(-x)
  Expm1,         // exp(x) - 1                 F' = exp(x)
  Expm1Neg,      // exp(-x) - 1                F' = -exp(-x)
  PearsonConj,   // x^2 / 4 + x                F' = x / 2 + 1
  NeymanConj,    // 2 - 2 exp(x / 2)           F' = -exp(x / 2)
  HalfTanh,      // tanh(x) / 2                F' = (1 - tanh(x)^2) / 2
};

// F(x). With `fn` a compile-time constant (the CPU kernels) the switch folds away.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T fn_value(Fn fn, T x) {
  switch (fn) {
    case Fn::Softplus: return softplus(x);
    case Fn::SoftplusNeg: return softplus(-x);
    case Fn::Identity: return x;
    case Fn::ReluOneMinus: return loss_max(T(1) - x, T(0));
    case Fn::ReluOnePlus: return loss_max(T(1) + x, T(0));
    case Fn::HalfSquare: return T(0.5) * x * x;
    case Fn::Exp: return loss_exp(x);
    case Fn::ExpNeg: return loss_exp(-x);
    case Fn::Expm1: return loss_expm1(x);
    case Fn::Expm1Neg: return loss_expm1(-x);
    case Fn::PearsonConj: return T(0.25) * x * x + x;
    // 2 - 2 exp(x/2) written with expm1, exact near x = 0.
    case Fn::NeymanConj: return T(-2) * loss_expm1(T(0.5) * x);
    case Fn::HalfTanh: return T(0.5) * loss_tanh(x);
  }
  return T(0);
}

// F'(x).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T fn_deriv(Fn fn, T x) {
  switch (fn) {
    case Fn::Softplus: return sigmoid(x);
    case Fn::SoftplusNeg: return -sigmoid(-x);
    case Fn::Identity: return T(1);
    // As torch's threshold_backward: 0 where relu's input is <= 0 (the subgradient at 0 is 0),
    // the slope elsewhere, NaN inputs included.
    case Fn::ReluOneMinus: return T(1) - x <= T(0) ? T(0) : T(-1);
    case Fn::ReluOnePlus: return T(1) + x <= T(0) ? T(0) : T(1);
    case Fn::HalfSquare: return x;
    case Fn::Exp:
    case Fn::Expm1: return loss_exp(x);
    case Fn::ExpNeg:
    case Fn::Expm1Neg: return -loss_exp(-x);
    case Fn::PearsonConj: return T(0.5) * x + T(1);
    case Fn::NeymanConj: return -loss_exp(T(0.5) * x);
    case Fn::HalfTanh: {
      const T t = loss_tanh(x);
      return T(0.5) * (T(1) - t * t);
    }
  }
  return T(0);
}

// Fn as a type, so that a loop can be templated on its term function.
template <Fn F>
struct FnTag {
  static constexpr Fn value = F;
};

// body(FnTag<fn>{}): turns a runtime Fn into a compile-time one once, outside the loop that
// `body` runs, so that the loop's F and F' fold to straight-line code (a switch inside the loop
// costs tens of thousands of instructions per kernel and the loads' overlap).
#ifdef __CUDACC__
#pragma nv_exec_check_disable
#endif
template <typename Body>
C10_HOST_DEVICE C10_ALWAYS_INLINE decltype(auto) with_fn(Fn fn, Body&& body) {
  switch (fn) {
    case Fn::Softplus: return body(FnTag<Fn::Softplus>{});
    case Fn::SoftplusNeg: return body(FnTag<Fn::SoftplusNeg>{});
    case Fn::ReluOneMinus: return body(FnTag<Fn::ReluOneMinus>{});
    case Fn::ReluOnePlus: return body(FnTag<Fn::ReluOnePlus>{});
    case Fn::HalfSquare: return body(FnTag<Fn::HalfSquare>{});
    case Fn::Exp: return body(FnTag<Fn::Exp>{});
    case Fn::ExpNeg: return body(FnTag<Fn::ExpNeg>{});
    case Fn::Expm1: return body(FnTag<Fn::Expm1>{});
    case Fn::Expm1Neg: return body(FnTag<Fn::Expm1Neg>{});
    case Fn::PearsonConj: return body(FnTag<Fn::PearsonConj>{});
    case Fn::NeymanConj: return body(FnTag<Fn::NeymanConj>{});
    case Fn::HalfTanh: return body(FnTag<Fn::HalfTanh>{});
    case Fn::Identity: break;
  }
  return body(FnTag<Fn::Identity>{});
}

// One term's per-element loss: sign * F(v - shift) + lin * v + constant. lin is TF-GAN's
// one-sided label smoothing: the cross-entropy with the real label 1 - s/2 is sp(-v) + s/2 * v.
struct Term {
  Fn fn = Fn::Identity;
  double sign = 1.0;
  double shift = 0.0;
  double constant = 0.0;
  double lin = 0.0;
};

// The loss of one (kind, role): a term over v_r (when `use_real`) and a term over v_g.
struct Plan {
  Term real;
  Term fake;
  bool use_real = false;      // the loss reads v_r
  bool relativistic = false;  // each shift is the other array's mean
};

constexpr double kLog2 = 0.69314718055994530942;

// -g_f(v) of an f-divergence, in the closed forms of docs/math.md section 3.
inline Term f_neg_activation(LossKind kind) {
  switch (kind) {
    case LossKind::KL: return {Fn::Identity, -1.0};
    case LossKind::ReverseKL: return {Fn::ExpNeg, 1.0};
    case LossKind::Pearson: return {Fn::Identity, -1.0};
    case LossKind::Neyman: return {Fn::Expm1, 1.0};
    case LossKind::SquaredHellinger: return {Fn::Expm1Neg, 1.0};
    case LossKind::JensenShannon: return {Fn::SoftplusNeg, 1.0, 0.0, -kLog2};
    case LossKind::Gan: return {Fn::SoftplusNeg, 1.0};
    case LossKind::TotalVariation: return {Fn::HalfTanh, -1.0};
    default: TORCH_CHECK(false, "adversarial_loss: internal error: not an f-divergence");
  }
}

// f*(g_f(v)) of an f-divergence.
inline Term f_conjugate(LossKind kind) {
  switch (kind) {
    case LossKind::KL: return {Fn::Exp, 1.0, 1.0};  // exp(v - 1)
    case LossKind::ReverseKL: return {Fn::Identity, 1.0, 0.0, -1.0};
    case LossKind::Pearson: return {Fn::PearsonConj, 1.0};
    case LossKind::Neyman: return {Fn::NeymanConj, 1.0};
    case LossKind::SquaredHellinger: return {Fn::Expm1, 1.0};
    case LossKind::JensenShannon: return {Fn::Softplus, 1.0, 0.0, -kLog2};
    case LossKind::Gan: return {Fn::Softplus, 1.0};
    case LossKind::TotalVariation: return {Fn::HalfTanh, 1.0};
    default: TORCH_CHECK(false, "adversarial_loss: internal error: not an f-divergence");
  }
}

inline Term negated(Term t) {
  t.sign = -t.sign;
  t.constant = -t.constant;
  return t;
}

// The terms of (kind, role); a, b, c are LSGAN's targets, `nonsaturating` picks the f-GAN
// generator's -g_f(v) form, label_smoothing and margin are the minimax and hinge critics'.
inline Plan make_plan(LossKind kind, bool critic, double a, double b, double c, bool nonsaturating,
                      double label_smoothing = 0.0, double margin = 1.0) {
  Plan p;
  p.use_real = critic;
  switch (kind) {
    case LossKind::Minimax:
    case LossKind::Nonsaturating:
      if (critic) {
        p.real = {Fn::SoftplusNeg, 1.0, 0.0, 0.0, 0.5 * label_smoothing};
        p.fake = {Fn::Softplus, 1.0};
      } else {
        p.fake = kind == LossKind::Minimax ? Term{Fn::Softplus, -1.0} : Term{Fn::SoftplusNeg, 1.0};
      }
      break;
    case LossKind::Wasserstein:
      p.real = {Fn::Identity, -1.0};
      p.fake = {Fn::Identity, critic ? 1.0 : -1.0};
      break;
    case LossKind::Hinge:
      // relu(m - v) = relu(1 - (v - (m - 1))) and relu(m + v) = relu(1 + (v - (1 - m))).
      p.real = {Fn::ReluOneMinus, 1.0, margin - 1.0};
      p.fake = critic ? Term{Fn::ReluOnePlus, 1.0, 1.0 - margin} : Term{Fn::Identity, -1.0};
      break;
    case LossKind::LeastSquares:
      p.real = {Fn::HalfSquare, 1.0, b};
      p.fake = {Fn::HalfSquare, 1.0, critic ? a : c};
      break;
    case LossKind::Relativistic:
      // critic: sp(-(v_r - m_g)) + sp(v_g - m_r); generator: the same with v_r and v_g swapped.
      // The shifts (the other array's mean) are filled in after the means pass.
      p.use_real = true;
      p.relativistic = true;
      p.real = {critic ? Fn::SoftplusNeg : Fn::Softplus, 1.0};
      p.fake = {critic ? Fn::Softplus : Fn::SoftplusNeg, 1.0};
      break;
    default:  // f-divergences
      if (critic) {
        p.real = f_neg_activation(kind);
        p.fake = f_conjugate(kind);
      } else {
        p.fake = nonsaturating ? f_neg_activation(kind) : negated(f_conjugate(kind));
      }
  }
  return p;
}

}  // namespace gankernels
