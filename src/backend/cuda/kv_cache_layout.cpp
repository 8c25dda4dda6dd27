#include "backend/cuda/kv_cache_layout.hpp"

#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

bool kv_cache_head_major() {
  static const bool on = knob_is("FP4LLM_KV_LAYOUT", "head_major");
  return on;
}

}  // namespace fp4llm::cuda
