// The weights of one model bound to their roles (layer i's q_proj, its norms, ...), checked
// against the config: a missing tensor or a wrong shape is an error naming it.
#pragma once

#include <memory>
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

  static LinearWeight of(const QuantizedLinear& q) { return {&q, nullptr, q.out_features, q.in_features}; }
  // The NVFP4 weight; for a 16-bit one an Error saying that `user` runs NVFP4 projections only,
  // naming the layer and the role.
  const QuantizedLinear& nvfp4_for(const char* user, int64_t layer, const char* role) const;
};

struct MlpWeights {
  LinearWeight gate, up, down;
};

struct MoeWeights {
  std::vector<float> router;  // [num_experts, hidden], kept 16-bit in checkpoints, float here
  std::vector<MlpWeights> experts;  // experts first_expert, first_expert + 1, ... (all, unsharded)
  int64_t first_expert = 0;         // expert parallelism: this rank's first expert
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
  std::string tensor_prefix;  // where the text model's tensors live: "model.", "language_model.model.", ...
  const TensorView* embed = nullptr;                 // [vocab, hidden], 16/32-bit
  const TensorView* lm_head = nullptr;               // [vocab, hidden], 16/32-bit (embed when tied)
  const QuantizedLinear* lm_head_nvfp4 = nullptr;    // set instead when the checkpoint has one
  std::shared_ptr<const QuantizedLinear> quantized_lm_head;  // owns lm_head_nvfp4 after quantize_lm_head
  std::vector<float> final_norm;
  std::vector<LayerWeights> layers;

  // `checkpoint` must outlive the result (the views point into it). Projections must be NVFP4
  // unless `allow_dense` (the 16-bit reference of `fp4llm eval`).
  static ModelWeights bind(const Checkpoint& checkpoint, bool allow_dense = false);

  // --quantize-lm-head: the 16-bit lm_head (the embedding table when tied; lookups keep the
  // 16-bit table) quantized to NVFP4 with the amax rule, as `fp4llm quantize` does projections.
  // Nothing to do when the checkpoint's lm_head is NVFP4 already.
  void quantize_lm_head();

  // --offload-embeddings: an Error when the embedding table is also the 16-bit lm_head (tied),
  // which every decode step reads whole, so it must stay in GPU memory.
  void check_embedding_offload() const;
};

// The Error of check_embedding_offload (also raised for synthetic models of `fp4llm bench`).
inline constexpr const char* kTiedHeadOffloadError =
    "--offload-embeddings: this model's lm_head is its embedding table (tied word embeddings), which every "
    "decode step reads whole on the GPU; add --quantize-lm-head so that the lm_head is a separate NVFP4 copy "
    "and the 16-bit table, read one row per token, can stay in host memory";

// Bytes the bound weights keep resident: the checkpoint's, with a quantized lm_head in place of
// the 16-bit one (beside the embedding table when the two were tied); without the embedding
// table when it is offloaded to host memory.
WeightBytes bound_weight_bytes(const ModelWeights& weights, const Checkpoint& checkpoint, bool offload_embeddings = false);

}  // namespace fp4llm
