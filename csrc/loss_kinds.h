// The loss kinds and roles of adversarial_loss, parsed once per call from the schema's strings
// (docs/math.md section 3). Shared by the argument checks and the loss plan (loss_terms.h).
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string>
#include <utility>

namespace gankernels {

enum class LossKind {
  Minimax,
  Nonsaturating,
  Wasserstein,
  Hinge,
  LeastSquares,
  Relativistic,
  KL,
  ReverseKL,
  Pearson,
  Neyman,
  SquaredHellinger,
  JensenShannon,
  Gan,
  TotalVariation,
};

inline LossKind parse_loss_kind(c10::string_view kind) {
  static const std::pair<const char*, LossKind> table[] = {
      {"minimax", LossKind::Minimax},
      {"nonsaturating", LossKind::Nonsaturating},
      {"wasserstein", LossKind::Wasserstein},
      {"hinge", LossKind::Hinge},
      {"least_squares", LossKind::LeastSquares},
      {"relativistic", LossKind::Relativistic},
      {"kl", LossKind::KL},
      {"reverse_kl", LossKind::ReverseKL},
      {"pearson", LossKind::Pearson},
      {"neyman", LossKind::Neyman},
      {"squared_hellinger", LossKind::SquaredHellinger},
      {"jensen_shannon", LossKind::JensenShannon},
      {"gan", LossKind::Gan},
      {"total_variation", LossKind::TotalVariation},
  };
  for (const auto& entry : table) {
    if (kind == entry.first) return entry.second;
  }
  TORCH_CHECK_VALUE(
      false, "adversarial_loss: unknown kind '", std::string(kind),
      "'; expected one of: minimax, nonsaturating, wasserstein, hinge, least_squares, "
      "relativistic, kl, reverse_kl, pearson, neyman, squared_hellinger, "
      "jensen_shannon, gan, total_variation");
}

inline bool parse_role_is_critic(c10::string_view role) {
  TORCH_CHECK_VALUE(role == "critic" || role == "generator",
                    "adversarial_loss: role must be one of critic, generator, got '",
                    std::string(role), "'");
  return role == "critic";
}

// How the per-element losses are reduced: divided by each side's element count and summed,
// summed, or returned per element.
enum class Reduction { Mean, Sum, None };

inline Reduction parse_reduction(c10::string_view reduction) {
  if (reduction == "mean") return Reduction::Mean;
  if (reduction == "sum") return Reduction::Sum;
  TORCH_CHECK_VALUE(reduction == "none",
                    "adversarial_loss: reduction must be one of mean, sum, none, got '",
                    std::string(reduction), "'");
  return Reduction::None;
}

}  // namespace gankernels
