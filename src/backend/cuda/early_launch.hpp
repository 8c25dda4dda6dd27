// Which decode kernels launch early (programmatic dependent launch, dependent_launch.cuh): a
// host-only policy, so that the CUDA backend can set it for its model.
#pragma once

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <vector>

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
// Set while the backend launches the kernels of a role listed in FP4LLM_PDL_ROLES (EarlyLaunchScope).
inline bool& early_launch_in_scope() {
  static thread_local bool on = false;
  return on;
}

inline bool early_launch_all() {
  static const bool forced_on = knob_is("FP4LLM_PDL", "all"),
                    forced_off = knob_is("FP4LLM_PDL", "experts") || knob_is("FP4LLM_PDL", "products");
  return forced_on || early_launch_in_scope() ||
         (!forced_off && early_launch_all_default().load(std::memory_order_relaxed));
}

// Whether FP4LLM_PDL_ROLES (a comma-separated list of qkv, rope, o_proj, moe, lm_head) names
// `role`: that part of a layer (or the lm_head) launches its kernels early whatever the model's
// default, FP4LLM_PDL=experts or =products included. For the per-role A/B of Qwen3-MoE (not yet
// measured), whose batch 1 lost with every kernel early (above) and with every product early
// (below), yet gained with the decode attention early (FP4LLM_ATTN_EARLY_BLOCKS): which of the
// others costs is not known.
inline bool early_launch_role(std::string_view role) {
  static const std::vector<std::string> roles = [] {
    std::vector<std::string> listed;
    for (std::string_view item : knob_list_items(knob_text("FP4LLM_PDL_ROLES"))) listed.emplace_back(item);
    return listed;
  }();
  return std::ranges::find(roles, role) != roles.end();
}

// The kernels launched while it lives launch early when `on` (the backend's scope around a role).
class EarlyLaunchScope {
 public:
  explicit EarlyLaunchScope(bool on) : before_(early_launch_in_scope()) { early_launch_in_scope() = before_ || on; }
  ~EarlyLaunchScope() { early_launch_in_scope() = before_; }
  EarlyLaunchScope(const EarlyLaunchScope&) = delete;
  EarlyLaunchScope& operator=(const EarlyLaunchScope&) = delete;

 private:
  bool before_;
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
