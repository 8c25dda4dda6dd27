// Which decode kernels launch early (programmatic dependent launch, dependent_launch.cuh): a
// host-only policy, so that the CUDA backend can set it for its model.
#pragma once

#include <atomic>
#include <iterator>
#include <optional>
#include <string_view>

#include "util/scoped_value.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

// Whether the decode kernels outside every part of a step (below) launch early; the parts follow
// their roles. Measured on the H200 (2026-12-05, lean GEMV loop, two same-call repeats), with
// every kernel early against none: dense models gain (Qwen3-8B 359.3 -> 362.9 tok/s at batch 1,
// 4,673 -> 4,754 at 16; Gemma3-27B 133.6 -> 138.0 and 1,677 -> 1,748), Qwen3-30B-A3B loses at
// batch 1 (325.0 -> 301.9). So the CUDA backend sets the default for its model (dense: on);
// FP4LLM_PDL=all forces everything early, FP4LLM_PDL=experts and =products this off. Read at launch
// time: a captured graph keeps what it was captured with.
inline std::atomic<bool>& early_launch_all_default() {
  static std::atomic<bool> on{false};
  return on;
}

// Set while the backend launches the kernels of one part (EarlyLaunchScope): whether they launch
// early; empty outside every part (the first norm, the attention).
inline std::optional<bool>& early_launch_in_scope() {
  static thread_local std::optional<bool> on;
  return on;
}

// FP4LLM_PDL=experts or =products: those kernels alone launch early, not the model's defaults.
inline bool early_launch_defaults_off() {
  static const bool off = knob_is("FP4LLM_PDL", "experts") || knob_is("FP4LLM_PDL", "products");
  return off;
}

inline bool early_launch_all() {
  static const bool forced_on = knob_is("FP4LLM_PDL", "all");
  if (forced_on) return true;
  if (const std::optional<bool>& scoped = early_launch_in_scope()) return *scoped;
  return !early_launch_defaults_off() && early_launch_all_default().load(std::memory_order_relaxed);
}

// `role`'s bit in a set of roles (kPdlRoles; 0 for a name that is no role).
inline unsigned early_launch_role_bit(std::string_view role) {
  for (unsigned i = 0; i < std::size(kPdlRoles); ++i)
    if (kPdlRoles[i] == role) return 1u << i;
  return 0;
}

inline constexpr unsigned kEveryEarlyLaunchRole = (1u << std::size(kPdlRoles)) - 1;

// The roles of a comma-separated list (FP4LLM_PDL_ROLES; `none` and unknown names add nothing).
inline unsigned early_launch_role_set(std::string_view list) {
  unsigned set = 0;
  for (std::string_view item : knob_list_items(list)) set |= early_launch_role_bit(item);
  return set;
}

// The roles a model launches early when FP4LLM_PDL_ROLES is unset, set by the CUDA backend per
// model kind: every role for dense models; for Qwen3-MoE, whose batch 1 lost with every kernel
// early (above) and with every product early (below), one role at a time (H100, 2026-12-06, same
// call, batch 1 / 16, tok/s: defaults 392.1 / 2,106) showed the qkv product as the loss (361.0 /
// 2,116) and the rope kernel (401.1 / 2,140) and o_proj (400.4 / 2,130) as gains; both together
// 404.9 / 2,151 against 391.7 / 2,107.
inline std::atomic<unsigned>& early_launch_default_roles() {
  static std::atomic<unsigned> roles{kEveryEarlyLaunchRole};
  return roles;
}

// The policy of the part `bit`, given the knobs: a listed set of roles (FP4LLM_PDL_ROLES, when
// `listed`) is the exact set launched early, every other part late; unset, the model's `defaults`
// unless FP4LLM_PDL=experts or =products (`forced_off`) asks for those kernels alone.
constexpr bool role_launches_early(unsigned bit, bool listed, unsigned roles, bool forced_off, unsigned defaults) {
  if (listed) return (roles & bit) != 0;
  return !forced_off && (defaults & bit) != 0;
}

inline bool early_launch_roles_listed() {
  static const bool listed = !knob_text("FP4LLM_PDL_ROLES").empty();
  return listed;
}

// Whether `role`'s kernels launch early (role_launches_early over this process's knobs).
inline bool early_launch_role(std::string_view role) {
  static const unsigned roles = early_launch_role_set(knob_text("FP4LLM_PDL_ROLES"));
  return role_launches_early(early_launch_role_bit(role), early_launch_roles_listed(), roles, early_launch_defaults_off(),
                             early_launch_default_roles().load(std::memory_order_relaxed));
}

// The kernels launched while it lives launch early when `on`, late when not (the backend's scope
// around a part of a step).
class EarlyLaunchScope : ScopedValue<std::optional<bool>> {
 public:
  explicit EarlyLaunchScope(bool on) : ScopedValue(early_launch_in_scope(), on) {}
};

// Whether the NVFP4 products (decode GEMVs) launch early: as the kernels around them, or every one
// under FP4LLM_PDL=products unless FP4LLM_PDL_ROLES lists the parts (measured slower at batch 1,
// H100, 2026-12-06: Qwen3-30B-A3B 385.6 -> 360.6 tok/s). A product streams its first weights
// before its wait, so launched early it overlaps the kernel before it; the other kernels have
// nothing to read before theirs.
inline bool early_launch_products() {
  static const bool forced = knob_is("FP4LLM_PDL", "products");
  return (forced && !early_launch_roles_listed()) || early_launch_all();
}

}  // namespace fp4llm::cuda
