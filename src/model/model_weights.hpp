// The weights of one model bound to their roles (layer i's q_proj, its norms, ...), checked
// against the config: a missing tensor or a wrong shape is an error naming it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "model/model_config.hpp"

namespace fp4llm {

// A projection's weight: NVFP4 always, except in the 16-bit reference model that `fp4llm eval`
// compares against (ModelWeights::bind with allow_dense), where it may be a plain tensor.
struct LinearWeight {
  const QuantizedLinear* nvfp4 = nullptr;
  const TensorView* dense = nullptr;
  int64_t out_features = 0, in_features = 0;
};

struct MlpWeights {
  LinearWeight gate, up, down;
};

struct MoeWeights {
  std::vector<float> router;  // [num_experts, hidden], kept 16-bit in checkpoints, float here
  std::vector<MlpWeights> experts;
};

struct LayerWeights {
  LinearWeight q, k, v, o;
  std::vector<float> input_norm, post_attention_norm, q_norm, k_norm;
  std::vector<float> pre_feedforward_norm, post_feedforward_norm;  // Gemma3 sandwich norms
  MlpWeights mlp;                                                  // dense layers
  std::optional<MoeWeights> moe;                                   // MoE layers
  KvCacheScales kv_scales;
};

struct ModelWeights {
  ModelConfig config;
  const TensorView* embed = nullptr;                 // [vocab, hidden], 16/32-bit
  const TensorView* lm_head = nullptr;               // [vocab, hidden], 16/32-bit (embed when tied)
  const QuantizedLinear* lm_head_nvfp4 = nullptr;    // set instead when the checkpoint has one
  std::vector<float> final_norm;
  std::vector<LayerWeights> layers;

  // `checkpoint` must outlive the result (the views point into it). Projections must be NVFP4
  // unless `allow_dense` (the 16-bit reference of `fp4llm eval`).
  static ModelWeights bind(const Checkpoint& checkpoint, bool allow_dense = false);
};

}  // namespace fp4llm
