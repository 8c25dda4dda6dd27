// The shape of a model, parsed from config.json: the architectures fp4llm runs are Qwen3,
// Qwen3-MoE and Gemma 3 text (also the text part of Gemma3ForConditionalGeneration).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fp4llm {

enum class ModelFamily { Qwen3, Qwen3Moe, Gemma3 };

struct ModelConfig {
  std::string architecture;  // as in config.json's "architectures"
  ModelFamily family = ModelFamily::Qwen3;
  int64_t hidden_size = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t intermediate_size = 0, vocab_size = 0, max_position_embeddings = 0;
  int64_t num_experts = 0, experts_per_token = 0, moe_intermediate_size = 0;
  int64_t sliding_window = 0;       // 0: no sliding-window layers
  std::vector<bool> layer_sliding;  // per layer: true for sliding-window attention
  std::vector<bool> layer_moe;      // per layer: true when the MLP is a mixture of experts
  bool tie_word_embeddings = false;

  // Numerics (transformers' modeling files; FORMATS.md).
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;          // full-attention layers
  double rope_scaling_factor = 1.0;     // linear scaling of full-attention layers
  double rope_local_theta = 10000.0;    // sliding layers (Gemma3)
  double attention_scale = 0.0;         // softmax scale: head_dim^-0.5 or query_pre_attn_scalar^-0.5
  double final_logit_softcapping = 0.0; // 0: off
  bool norm_topk_prob = false;

  // Throws Error naming the field (or the unsupported architecture).
  static ModelConfig from_json(const nlohmann::json& config);

  // Bytes one token adds to an FP8 KV cache (K and V, every layer); sliding layers stop growing
  // once their window is full, which kv_cache_bytes() accounts for.
  int64_t kv_bytes_per_token_per_layer() const { return 2 * num_kv_heads * head_dim; }
  int64_t kv_cache_bytes(int64_t tokens) const;
  int64_t num_sliding_layers() const;
  bool has_dense_mlp() const;  // some layer has a plain (not mixture-of-experts) MLP
};

}  // namespace fp4llm
