// FP4LLM_L2_AHEAD: decode GEMVs whose blocks ask L2 for a weight's bytes before they wait for the
// kernel ahead of them, so that those bytes cross from memory while it runs. At batch 1 a
// Qwen3-30B-A3B layer spends most of its 45 us in kernels whose chains of dependent weight round
// trips leave the memory idle (the attention, the router, the experts after their routing; kernel
// trace, H100, 2026-12-06). Parts: `qkv` (the default), the experts' down projection asks for the
// next layer's qkv weights (5.9 MB, in L2's 50 MB beside the experts' 21 MB): with the deferred
// norm that qkv is a plain product launched late, and it gained 0.9-1.5% at batch 1 in three
// same-call A/Bs (H100, 2026-12-07: 437.4 -> 441.3, 430.8 -> 437.7, 431.2 -> 437.3 tok/s; nothing
// while the qkv still normalised its input itself, 412.2 -> 412.3); `o_proj`, o_proj (launched
// early during the attention) for its own; `down`, each block of the experts' routed gate/up, once
// it knows its expert, for its share of that expert's down weights; `gate_up`, each block of the
// routed gate/up, once routed, for all of its own weights at once; `qkv_own`, a plain qkv (after a
// norm kernel) for its own. With every part but `qkv_own` Qwen3-30B-A3B lost 5% at batch 1
// (413.8 -> 393.0), and `qkv_own` lost 1.7% on Qwen3-8B (391.5 -> 384.7; same calls). `none`: no
// part. The one earlier L2 prefetch, each work item asking for its own range just before its loads
// (FP4LLM_GEMV_L2_PREFETCH, sixth session), lost 1-5%: it ran while the memory was busy with the
// same kernel's loads.
#pragma once

#include <cstdint>
#include <string_view>

#include "formats/number_formats.hpp"  // FP4LLM_HD
#include "util/scoped_value.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

// A run of 16-byte weight slots (with their 2-byte scales) one block requests.
struct L2Share {
  uint32_t first, count;
};

// Block b of `blocks`' share of `slots` weight slots (a multiple of 32: whole chunks of a tile):
// consecutive runs of whole chunks, so that the scales' share (2 bytes a slot) stays a multiple
// of 16 bytes from a 16-byte boundary as the bulk prefetch needs, together exactly [0, slots); the
// blocks past the last run get none.
FP4LLM_HD constexpr L2Share l2_share(uint32_t slots, uint32_t blocks, uint32_t b) {
  const uint32_t chunks = slots / 32, per_block = (chunks + blocks - 1) / blocks;
  const uint32_t first = b * per_block < chunks ? b * per_block : chunks;
  const uint32_t end = first + per_block < chunks ? first + per_block : chunks;
  return {first * 32, (end - first) * 32};
}

// Whether FP4LLM_L2_AHEAD lists `part` (`qkv`, `qkv_own`, `o_proj`, `down`, `gate_up`); unset or empty: `qkv`.
inline bool l2_ahead_requested(std::string_view part) {
  const std::string_view set = knob_text("FP4LLM_L2_AHEAD");
  for (std::string_view item : knob_list_items(set.empty() ? std::string_view("qkv") : set))
    if (item == part) return true;
  return false;
}

// Set while the backend launches a part whose decode GEMVs request their own weights
// (FP4LLM_L2_AHEAD=o_proj): read at launch time, so a captured graph keeps what it was captured with.
inline bool& own_weights_to_l2() {
  static thread_local bool on = false;
  return on;
}

class OwnWeightsToL2Scope : ScopedValue<bool> {
 public:
  explicit OwnWeightsToL2Scope(bool on) : ScopedValue(own_weights_to_l2(), on) {}
};

}  // namespace fp4llm::cuda
