// Which decode kernels launch early (programmatic dependent launch, dependent_launch.cuh): a
// host-only policy, so that the CUDA backend can set it for its model.
#pragma once

#include <atomic>

#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

// Whether every decode-step kernel launches early (each waits at its start), not only the
// expert-group GEMVs. Measured on the H200 (2026-12-05, lean GEMV loop, two same-call repeats):
// dense models gain (Qwen3-8B 359.3 -> 362.9 tok/s at batch 1, 4,673 -> 4,754 at 16; Gemma3-27B
// 133.6 -> 138.0 and 1,677 -> 1,748), Qwen3-30B-A3B loses at batch 1 (325.0 -> 301.9). So the
// CUDA backend sets the default for its model (dense: on); FP4LLM_PDL=all forces it on,
// FP4LLM_PDL=experts off. Read at launch time: a captured graph keeps what it was captured with.
inline std::atomic<bool>& early_launch_all_default() {
  static std::atomic<bool> on{false};
  return on;
}
inline bool early_launch_all() {
  static const bool forced_on = knob_is("FP4LLM_PDL", "all"), forced_off = knob_is("FP4LLM_PDL", "experts");
  return forced_on || (!forced_off && early_launch_all_default().load(std::memory_order_relaxed));
}

}  // namespace fp4llm::cuda
