// The reference forward pass of Qwen3, Qwen3-MoE and Gemma3 on the CPU: the executable
// specification every CUDA kernel is compared with. Float32 activations and accumulation,
// NVFP4 weights dequantized inside the products, a paged FP8 or BF16 KV cache.
#pragma once

#include <memory>

#include "backend/backend.hpp"
#include "backend/cpu/cpu_kv_cache.hpp"
#include "model/model_weights.hpp"

namespace fp4llm::cpu {

class CpuBackend final : public Backend {
 public:
  // `weights` must outlive the backend.
  CpuBackend(const ModelWeights& weights, const KvCacheConfig& cache);
  const ModelConfig& config() const override { return w_.config; }
  void forward(const ForwardBatch& batch, std::vector<float>& logits) override;
  const KvCache& kv_cache() const { return kv_; }

 private:
  struct Tokens;  // the batch flattened to one row per new token
  void attention_block(int64_t layer, const Tokens& t, std::vector<float>& x);
  void attend(int64_t layer, const Tokens& t, const std::vector<float>& q, std::vector<float>& out);
  void mlp_block(int64_t layer, const Tokens& t, std::vector<float>& x);
  void dense_mlp(const MlpWeights& m, const float* h, int64_t rows, float* out);
  void moe_mlp(const MoeWeights& m, const float* h, int64_t rows, float* out);
  void norm_rows(float* x, int64_t rows, std::span<const float> w) const;

  const ModelWeights& w_;
  KvCache kv_;
  std::vector<float> inv_freq_full_, inv_freq_sliding_;
};

}  // namespace fp4llm::cpu
