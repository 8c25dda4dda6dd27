// Mixture-of-experts weights stored fused, one 3-D tensor for all experts of a layer
// (transformers 5's Qwen3-MoE: `mlp.experts.gate_up_proj` [E, 2*I, H] and `mlp.experts.down_proj`
// [E, H, I]), seen as the per-expert 2-D weights the rest of fp4llm knows
// (`mlp.experts.N.{gate,up,down}_proj.weight`). The views slice the stored bytes: no copy.
#pragma once

#include <vector>

#include "io/safetensors_file.hpp"

namespace fp4llm {

// The per-expert views of a fused expert tensor; `{t}` itself for any other tensor.
std::vector<TensorView> unfuse_experts(const TensorView& t);

}  // namespace fp4llm
