// Argument checks and small helpers shared by the CPU and CUDA kernels. Messages match
// gankernels/ops/_checks.py: they name the op, the argument and what was expected.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>

namespace gankernels {

template <typename scalar_t>
using opmath_t = at::opmath_type<scalar_t>;

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  const auto st = t.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
              op, ": ", name, " must be float32, float64, float16 or bfloat16, got ", st);
}

inline void check_batch(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.dim() >= 1, op, ": ", name, " must have a batch dimension, got a 0-dim tensor");
  TORCH_CHECK(t.size(0) > 0, op, ": ", name, " has an empty batch (shape ", t.sizes(),
              "); need B >= 1");
}

inline void check_same_device(const at::Tensor& t, const at::Tensor& ref, const char* op,
                              const char* name, const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " must be on the same device as ",
              ref_name, " (", ref.device(), "), got ", t.device());
}

inline void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op,
                       const char* name, const char* ref_name, bool shape = true) {
  check_same_device(t, ref, op, name, ref_name);
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", name,
              " must have the same dtype as ", ref_name, " (", ref.scalar_type(), "), got ",
              t.scalar_type());
  if (shape) {
    TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", name, " must have the same shape as ",
                ref_name, " ", ref.sizes(), ", got ", t.sizes());
  }
}

// Loss kinds and roles, parsed once per call from the schema's strings.
enum class LossKind {
  Minimax, Nonsaturating, Wasserstein, Hinge, LeastSquares, Relativistic,
  KL, ReverseKL, Pearson, Neyman, SquaredHellinger, JensenShannon, Gan, TotalVariation,
};

inline LossKind parse_loss_kind(c10::string_view kind) {
  static const std::pair<const char*, LossKind> table[] = {
      {"minimax", LossKind::Minimax}, {"nonsaturating", LossKind::Nonsaturating},
      {"wasserstein", LossKind::Wasserstein}, {"hinge", LossKind::Hinge},
      {"least_squares", LossKind::LeastSquares}, {"relativistic", LossKind::Relativistic},
      {"kl", LossKind::KL}, {"reverse_kl", LossKind::ReverseKL}, {"pearson", LossKind::Pearson},
      {"neyman", LossKind::Neyman}, {"squared_hellinger", LossKind::SquaredHellinger},
      {"jensen_shannon", LossKind::JensenShannon}, {"gan", LossKind::Gan},
      {"total_variation", LossKind::TotalVariation},
  };
  for (const auto& entry : table) {
    if (kind == entry.first) return entry.second;
  }
  TORCH_CHECK(false, "adversarial_loss: unknown kind '", std::string(kind),
              "'; expected one of: minimax, nonsaturating, wasserstein, hinge, least_squares, "
              "relativistic, kl, reverse_kl, pearson, neyman, squared_hellinger, "
              "jensen_shannon, gan, total_variation");
}

inline bool parse_role_is_critic(c10::string_view role) {
  TORCH_CHECK(role == "critic" || role == "generator",
              "adversarial_loss: role must be one of critic, generator, got '", std::string(role),
              "'");
  return role == "critic";
}

}  // namespace gankernels
