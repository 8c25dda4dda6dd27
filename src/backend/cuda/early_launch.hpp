// Which decode kernels launch early (programmatic dependent launch, dependent_launch.cuh): a
// host-only policy, so that the CUDA backend can set it for its model.
#pragma once

#include <atomic>
#include <iterator>
#include <optional>
#include <string_view>

#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

// Whether every decode-step kernel launches early (each waits at its start), not only the
// expert-group GEMVs. Measured on the H200 (2026-12-05, lean GEMV loop, two same-call repeats):
// dense models gain (Qwen3-8B 359.3 -> 362.9 tok/s at batch 1, 4,673 -> 4,754 at 16; Gemma3-27B
// 133.6 -> 138.0 and 1,677 -> 1,748), Qwen3-30B-A3B loses at batch 1 (325.0 -> 301.9). So the
// CUDA backend sets the default for its model (dense: on); FP4LLM_PDL=all forces it on,
// FP4LLM_PDL=experts and =products off (products: early_launch_products below). Read at launch
// time: a captured graph keeps what it was captured with.
inline std::atomic<bool>& early_launch_all_default() {
  static std::atomic<bool> on{false};
  return on;
}
// Set while the backend launches the kernels of one role (EarlyLaunchScope): whether they launch
// early; empty outside every role (the embedding, the first norm, the attention, the row gather).
inline std::optional<bool>& early_launch_in_scope() {
  static thread_local std::optional<bool> on;
  return on;
}

inline bool early_launch_all() {
  static const bool forced_on = knob_is("FP4LLM_PDL", "all"),
                    forced_off = knob_is("FP4LLM_PDL", "experts") || knob_is("FP4LLM_PDL", "products");
  if (forced_on) return true;
  if (const std::optional<bool>& scoped = early_launch_in_scope()) return *scoped;
  return !forced_off && early_launch_all_default().load(std::memory_order_relaxed);
}

// The parts of a step (FP4LLM_PDL_ROLES) whose kernels launch early or not as a group: `mlp` is a
// dense layer's gate/up and down products with their norms, `moe` an MoE layer's router, experts
// and combine.
inline constexpr std::string_view kEarlyLaunchRoles[] = {"qkv", "rope", "o_proj", "mlp", "moe", "lm_head"};

// `role`'s bit in a set of roles (0 for a name that is no role).
inline unsigned early_launch_role_bit(std::string_view role) {
  for (unsigned i = 0; i < std::size(kEarlyLaunchRoles); ++i)
    if (kEarlyLaunchRoles[i] == role) return 1u << i;
  return 0;
}

inline constexpr unsigned kEveryEarlyLaunchRole = (1u << std::size(kEarlyLaunchRoles)) - 1;

// The roles a model launches early when FP4LLM_PDL_ROLES is unset, set by the CUDA backend per
// model kind: every role for dense models (early_launch_all_default above); for Qwen3-MoE, whose
// batch 1 lost with every kernel early (above) and with every product early (below), one role at
// a time (H100, 2026-12-06, same call, batch 1 / 16, tok/s: defaults 392.1 / 2,106) showed the
// qkv product as the loss (361.0 / 2,116) and the rope kernel (401.1 / 2,140) and o_proj (400.4 /
// 2,130) as gains; both together 404.9 / 2,151 against 391.7 / 2,107.
inline std::atomic<unsigned>& early_launch_default_roles() {
  static std::atomic<unsigned> roles{kEveryEarlyLaunchRole};
  return roles;
}

// Whether `role`'s kernels launch early: listed in FP4LLM_PDL_ROLES (a comma-separated list of the
// roles above, or `none`: the listed roles early, every other late, whatever the model's default
// or FP4LLM_PDL but `all`), or, unset, among the model's default roles unless FP4LLM_PDL=experts
// or =products asks for those kernels alone.
inline bool early_launch_role(std::string_view role) {
  static const bool listed = !knob_text("FP4LLM_PDL_ROLES").empty();
  static const unsigned roles = [] {
    unsigned set = 0;
    for (std::string_view item : knob_list_items(knob_text("FP4LLM_PDL_ROLES"))) set |= early_launch_role_bit(item);
    return set;
  }();
  static const bool forced_off = knob_is("FP4LLM_PDL", "experts") || knob_is("FP4LLM_PDL", "products");
  const unsigned bit = early_launch_role_bit(role);
  if (listed) return (roles & bit) != 0;
  return !forced_off && (early_launch_default_roles().load(std::memory_order_relaxed) & bit) != 0;
}

// The kernels launched while it lives launch early when `on`, late when not (the backend's scope
// around a role).
class EarlyLaunchScope {
 public:
  explicit EarlyLaunchScope(bool on) : before_(early_launch_in_scope()) { early_launch_in_scope() = on; }
  ~EarlyLaunchScope() { early_launch_in_scope() = before_; }
  EarlyLaunchScope(const EarlyLaunchScope&) = delete;
  EarlyLaunchScope& operator=(const EarlyLaunchScope&) = delete;

 private:
  std::optional<bool> before_;
};

// Whether the NVFP4 products (decode GEMVs) launch early: with every kernel, or alone under
// FP4LLM_PDL=products (measured slower at batch 1, H100, 2026-12-06: Qwen3-30B-A3B 385.6 -> 360.6
// tok/s). A product streams its first weights before its wait,
// so launched early it overlaps the kernel before it; the other kernels have nothing to read
// before theirs. Meant for Qwen3-MoE, whose batch 1 lost with every kernel early (above): its
// qkv and o_proj products cost 9.4 and 6.1 us a layer against floors of 2.0 and 1.6.
inline bool early_launch_products() {
  static const bool forced = knob_is("FP4LLM_PDL", "products");
  return forced || early_launch_all();
}

}  // namespace fp4llm::cuda
