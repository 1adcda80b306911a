// The argument checks of every op, shared by the CPU and CUDA kernels: each backend adds only
// the check that the tensors are on its device type. Messages and Python exception types match
// gankernels/ops/_checks.py (op, argument, what was expected; TypeError for a dtype, ValueError
// otherwise): a compiled op's error reaches the user as it is, so the two lists must agree
// (the bad-input tests compare them case by case).
#pragma once

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>

#include <charconv>
#include <cmath>
#include <optional>
#include <string>

#include "loss_kinds.h"

namespace gankernels {

// The names Python gives dtypes ("float32", "int64", "bool"), so that a message from here reads
// as the one gankernels/ops/_checks.py gives.
inline std::string dtype_name(at::ScalarType t) { return std::string(c10::getDtypeNames(t).first); }

// A double as Python's repr() writes it: the shortest digits that read back the same, in fixed
// notation for exponents -4 to 15 ("-1.0", "0.01", "100000.0") and scientific otherwise
// ("1e-05", "1e+16"), so that a message from here matches the Python check's.
inline std::string py_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific).ptr;
  std::string s(buf, end);  // shortest round trip, e.g. "-1.234e-05"
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  const auto e = s.find('e');
  const int exp = std::stoi(s.substr(e + 1));
  std::string digits;
  for (char c : s.substr(0, e)) {
    if (c != '.') digits += c;
  }
  const int n = static_cast<int>(digits.size());
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return sign + "0." + std::string(-exp - 1, '0') + digits;
    if (n <= exp + 1) return sign + digits + std::string(exp + 1 - n, '0') + ".0";
    return sign + digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
  }
  std::string out = digits.substr(0, 1) + (n > 1 ? "." + digits.substr(1) : "");
  const std::string magnitude = std::to_string(exp < 0 ? -exp : exp);
  return sign + out + (exp < 0 ? "e-" : "e+") + (magnitude.size() < 2 ? "0" : "") + magnitude;
}

// The checks raise the Python exceptions of gankernels/ops/_checks.py: TypeError for a wrong
// dtype, ValueError for everything else (TORCH_CHECK_TYPE / TORCH_CHECK_VALUE).
inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  const auto st = t.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
                   op, ": ", name, " must be float32, float64, float16 or bfloat16, got ",
                   dtype_name(st));
}

inline void check_batch(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() >= 1, op, ": ", name,
                    " must have a batch dimension, got a 0-dim tensor");
  TORCH_CHECK_VALUE(t.size(0) > 0, op, ": ", name, " has an empty batch (shape ", t.sizes(),
                    "); need B >= 1");
}

inline void check_same_device(const at::Tensor& t, const at::Tensor& ref, const char* op,
                              const char* name, const char* ref_name) {
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": ", name, " must be on the same device as ",
                    ref_name, " (", ref.device(), "), got ", t.device());
}

inline void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name,
                       const char* ref_name, bool shape = true) {
  check_same_device(t, ref, op, name, ref_name);
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": ", name,
                   " must have the same dtype as ", ref_name, " (", dtype_name(ref.scalar_type()),
                   "), got ", dtype_name(t.scalar_type()));
  if (shape) {
    TORCH_CHECK_VALUE(t.sizes() == ref.sizes(), op, ": ", name, " must have the same shape as ",
                      ref_name, " ", ref.sizes(), ", got ", t.sizes());
  }
}

inline void check_eps(const at::Tensor& eps, const at::Tensor& ref, const char* op,
                      const char* ref_name) {
  check_same_device(eps, ref, op, "eps", ref_name);
  TORCH_CHECK_VALUE(eps.dim() == 1 && eps.size(0) == ref.size(0), op,
                    ": eps must have shape [B] = [", ref.size(0), "] (one value per sample), got ",
                    eps.sizes());
}

inline void check_gp_interpolate(const at::Tensor& real, const at::Tensor& fake,
                                 const at::Tensor& eps) {
  constexpr const char* op = "gp_interpolate";
  check_floating(real, op, "real");
  check_floating(fake, op, "fake");
  check_floating(eps, op, "eps");
  check_batch(real, op, "real");
  check_like(fake, real, op, "fake", "real");
  check_eps(eps, real, op, "real");
}

inline void check_gp_interpolate_backward(const at::Tensor& grad, const at::Tensor& eps,
                                          const std::optional<at::Tensor>& real,
                                          const std::optional<at::Tensor>& fake) {
  constexpr const char* op = "gp_interpolate_backward";
  check_floating(grad, op, "grad");
  check_floating(eps, op, "eps");
  check_batch(grad, op, "grad");
  check_eps(eps, grad, op, "grad");
  TORCH_CHECK_VALUE(real.has_value() == fake.has_value(), op,
                    ": real and fake must both be given (for eps's gradient) or both be None");
  if (real.has_value()) {
    check_floating(*real, op, "real");
    check_floating(*fake, op, "fake");
    check_like(*real, grad, op, "real", "grad");
    check_like(*fake, grad, op, "fake", "grad");
  }
}

inline void check_norm_penalty(const at::Tensor& grad, double target, double weight,
                               double inv_scale, const char* op = "norm_penalty") {
  check_floating(grad, op, "grad");
  check_batch(grad, op, "grad");
  TORCH_CHECK_VALUE(target >= 0, op, ": target must be >= 0, got ", py_float(target));
  TORCH_CHECK_VALUE(inv_scale > 0, op, ": inv_scale must be > 0, got ", py_float(inv_scale));
  TORCH_CHECK_VALUE(weight == weight, op, ": weight must be a number, got ", py_float(weight));
}

inline void check_per_sample(const at::Tensor& t, const at::Tensor& grad, const char* op,
                             const char* name) {
  check_floating(t, op, name);
  check_same_device(t, grad, op, name, "grad");
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == grad.size(0), op, ": ", name,
                    " must have shape [B] = [", grad.size(0), "] (one value per sample), got ",
                    t.sizes());
}

// The upstream gradient of a scalar output (`what` says which): a float 0-dim tensor on ref's
// device.
inline void check_scalar_gradient(const at::Tensor& t, const at::Tensor& ref, const char* op,
                                  const char* name, const char* ref_name, const char* what) {
  check_floating(t, op, name);
  check_same_device(t, ref, op, name, ref_name);
  TORCH_CHECK_VALUE(t.dim() == 0, op, ": ", name, " must be a 0-dim tensor (", what,
                    "), got shape ", t.sizes());
}

inline void check_norm_penalty_backward(const at::Tensor& grad_loss,
                                        const std::optional<at::Tensor>& grad_norms,
                                        const at::Tensor& grad, const at::Tensor& norms,
                                        double target, double weight, double inv_scale) {
  constexpr const char* op = "norm_penalty_backward";
  check_norm_penalty(grad, target, weight, inv_scale, op);
  check_scalar_gradient(grad_loss, grad, op, "grad_loss", "grad", "the loss's gradient");
  check_per_sample(norms, grad, op, "norms");
  if (grad_norms.has_value()) check_per_sample(*grad_norms, grad, op, "grad_norms");
}

struct LossChoice {
  LossKind kind;
  bool critic;
  Reduction reduction;
};

inline LossChoice check_adversarial_loss(const std::optional<at::Tensor>& real_out,
                                         const at::Tensor& fake_out, c10::string_view kind,
                                         c10::string_view role, double label_smoothing,
                                         double margin,
                                         const std::optional<at::Tensor>& real_weights,
                                         const std::optional<at::Tensor>& fake_weights,
                                         c10::string_view reduction) {
  constexpr const char* op = "adversarial_loss";
  const LossKind k = parse_loss_kind(kind);
  const bool critic = parse_role_is_critic(role);
  const Reduction r = parse_reduction(reduction);
  TORCH_CHECK_VALUE(label_smoothing >= 0 && label_smoothing <= 1, op,
                    ": label_smoothing must be in [0, 1], got ", py_float(label_smoothing));
  TORCH_CHECK_VALUE(std::isfinite(margin), op, ": margin must be a finite number, got ",
                    py_float(margin));
  check_floating(fake_out, op, "fake_out");
  TORCH_CHECK_VALUE(fake_out.numel() > 0, op, ": fake_out is empty (shape ", fake_out.sizes(),
                    "); need B >= 1");
  const bool needs_real = critic || k == LossKind::Relativistic;
  if (!real_out.has_value()) {
    TORCH_CHECK_VALUE(!needs_real, op, ": the ", std::string(role), " loss of kind '",
                      std::string(kind), "' needs real_out, got None");
    TORCH_CHECK_VALUE(!real_weights.has_value(), op, ": real_weights given without real_out");
  } else {
    check_floating(*real_out, op, "real_out");
    TORCH_CHECK_VALUE(real_out->numel() > 0, op, ": real_out is empty (shape ", real_out->sizes(),
                      "); need B >= 1");
    check_like(fake_out, *real_out, op, "fake_out", "real_out", /*shape=*/false);
    TORCH_CHECK_VALUE(r != Reduction::None || !needs_real || real_out->sizes() == fake_out.sizes(),
                      op,
                      ": reduction 'none' adds the real and fake terms elementwise, so real_out "
                      "and fake_out must have one shape, got ",
                      real_out->sizes(), " and ", fake_out.sizes());
  }
  auto check_weights = [&](const std::optional<at::Tensor>& w, const char* name,
                           const at::Tensor& out, const char* out_name) {
    if (!w.has_value()) return;
    check_floating(*w, op, name);
    check_same_device(*w, out, op, name, out_name);
    TORCH_CHECK_VALUE(w->sizes() == out.sizes(), op, ": ", name, " must have the same shape as ",
                      out_name, " ", out.sizes(), ", got ", w->sizes());
  };
  if (real_out.has_value()) check_weights(real_weights, "real_weights", *real_out, "real_out");
  check_weights(fake_weights, "fake_weights", fake_out, "fake_out");
  return {k, critic, r};
}

inline void check_adversarial_loss_grad(const at::Tensor& grad_loss, const at::Tensor& fake_out,
                                        Reduction reduction) {
  constexpr const char* op = "adversarial_loss_backward";
  check_floating(grad_loss, op, "grad_loss");
  if (reduction == Reduction::None) {
    TORCH_CHECK_VALUE(grad_loss.sizes() == fake_out.sizes(), op,
                      ": grad_loss must have fake_out's shape ", fake_out.sizes(),
                      " (the loss of reduction 'none'), got ", grad_loss.sizes());
  } else {
    TORCH_CHECK_VALUE(grad_loss.numel() == 1, op,
                      ": grad_loss must hold one element (the loss is a scalar), got shape ",
                      grad_loss.sizes());
  }
  check_same_device(grad_loss, fake_out, op, "grad_loss", "fake_out");
}

inline void check_clip_bound(double c, size_t n_params) {
  TORCH_CHECK_VALUE(c > 0, "clip_: c must be a positive number, got ", py_float(c));
  TORCH_CHECK_VALUE(n_params > 0, "clip_: params is empty; need at least one tensor");
}

// params[i] of clip_, all of which are validated before any is written: a bad tensor must not
// leave the list half clipped.
inline void check_clip_param(const at::Tensor& p, size_t i, c10::Device device) {
  constexpr const char* op = "clip_";
  TORCH_CHECK_VALUE(p.defined(), op, ": params[", i, "] is an undefined tensor");
  const auto st = p.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
                   op, ": params[", i, "] must be float32, float64, float16 or bfloat16, got ",
                   dtype_name(st));
  TORCH_CHECK_VALUE(p.device() == device, op,
                    ": every tensor in params must be on one device; params[0] is on ", device,
                    ", params[", i, "] on ", p.device());
  TORCH_CHECK_VALUE(
      p.numel() == 0 || at::has_internal_overlap(p) != at::MemOverlap::Yes, op, ": params[", i,
      "] has elements that share memory (e.g. an expanded tensor) and cannot be clamped in "
      "place; clone() it first");
}

// ema_'s checks, all before anything is written (gankernels/ops/_checks.py check_ema).
inline void check_ema(at::TensorList target, at::TensorList source, double decay) {
  constexpr const char* op = "ema_";
  TORCH_CHECK_VALUE(decay >= 0 && decay <= 1, op, ": decay must be a number in [0, 1], got ",
                    py_float(decay));
  TORCH_CHECK_VALUE(!target.empty(), op, ": target is empty; need at least one tensor");
  TORCH_CHECK_VALUE(target.size() == source.size(), op,
                    ": target and source must hold the same number of tensors, got ", target.size(),
                    " and ", source.size());
  const c10::Device device = target[0].device();
  for (size_t i = 0; i < target.size(); ++i) {
    const std::string t_name = "target[" + std::to_string(i) + "]";
    const std::string s_name = "source[" + std::to_string(i) + "]";
    check_floating(target[i], op, t_name.c_str());
    check_floating(source[i], op, s_name.c_str());
    TORCH_CHECK_VALUE(target[i].device() == device, op,
                      ": every tensor must be on one device; target[0] is on ", device, ", ",
                      t_name, " on ", target[i].device());
    check_like(source[i], target[i], op, s_name.c_str(), t_name.c_str());
  }
  for (size_t i = 0; i < target.size(); ++i) {
    TORCH_CHECK_VALUE(
        target[i].numel() == 0 || at::has_internal_overlap(target[i]) != at::MemOverlap::Yes, op,
        ": target[", i,
        "] has elements that share memory (e.g. an expanded tensor) and cannot be "
        "updated in place; clone() it first");
  }
}

// mmd2's checks (gankernels/ops/_checks.py check_mmd2).
inline void check_mmd2(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> sigmas,
                       bool unbiased, const char* op = "mmd2") {
  check_floating(x, op, "x");
  check_floating(y, op, "y");
  TORCH_CHECK_VALUE(x.dim() == 2, op,
                    ": x must be 2-D [B, D] (one feature vector per sample), got shape ",
                    x.sizes());
  TORCH_CHECK_VALUE(y.dim() == 2, op,
                    ": y must be 2-D [B', D] (one feature vector per sample), got shape ",
                    y.sizes());
  check_like(y, x, op, "y", "x", /*shape=*/false);
  TORCH_CHECK_VALUE(y.size(1) == x.size(1), op,
                    ": y must have as many features as x (D = ", x.size(1), "), got shape ",
                    y.sizes());
  TORCH_CHECK_VALUE(x.size(1) > 0, op, ": x must have at least one feature, got shape ", x.sizes());
  const int64_t need = unbiased ? 2 : 1;
  const char* estimate = unbiased ? "unbiased" : "biased";
  TORCH_CHECK_VALUE(x.size(0) >= need, op, ": x has ", x.size(0), " samples; the ", estimate,
                    " estimate needs at least ", need);
  TORCH_CHECK_VALUE(y.size(0) >= need, op, ": y has ", y.size(0), " samples; the ", estimate,
                    " estimate needs at least ", need);
  TORCH_CHECK_VALUE(!sigmas.empty(), op, ": sigmas must hold at least one bandwidth, got none");
  for (double s : sigmas) {
    TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, op, ": sigmas must be finite and > 0, got ",
                      py_float(s));
  }
}

inline void check_mmd2_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y,
                                at::ArrayRef<double> sigmas, bool unbiased) {
  constexpr const char* op = "mmd2_backward";
  check_mmd2(x, y, sigmas, unbiased, op);
  check_scalar_gradient(grad, x, op, "grad", "x", "the gradient of the scalar MMD^2");
}

}  // namespace gankernels
