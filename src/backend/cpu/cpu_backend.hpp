// The reference forward pass of Qwen3, Qwen3-MoE and Gemma3 on the CPU: the executable
// specification every CUDA kernel is compared with. Float32 activations and accumulation,
// NVFP4 weights dequantized inside the products, a paged FP8 or BF16 KV cache.
#pragma once

#include <memory>

#include "backend/backend.hpp"
#include "backend/cpu/cpu_kv_cache.hpp"
#include "backend/cpu/thread_collective.hpp"
#include "model/model_weights.hpp"

namespace fp4llm::cpu {

// Tensor parallelism on the CPU: this backend is rank `rank` of `group`, running its shard of the
// model (model/tensor_parallel.hpp). The sums and the gather sit where the CUDA backend's NCCL
// calls do, so the partition is specified and tested here, without GPUs.
struct RankLink {
  ThreadCollective* group = nullptr;
  int64_t rank = 0;
  bool active() const { return group != nullptr && group->size() > 1; }
};

class CpuBackend final : public Backend {
 public:
  // `weights` must outlive the backend; with an active `link` they are the rank's shard.
  CpuBackend(const ModelWeights& weights, const KvCacheConfig& cache, RankLink link = {});
  const ModelConfig& config() const override { return w_.config; }
  void forward(const ForwardBatch& batch, std::vector<float>& logits) override;
  const KvCache& kv_cache() const { return kv_; }
  // FP8 products (cpu_ops.hpp linear_fp8) for every NVFP4 product of more than kFp8PrefillAbove
  // rows except the MoE experts' (attention projections, dense MLPs, an NVFP4 lm_head): what the
  // GPU's FP8 prefill GEMM computes (FP4LLM_FP8_PREFILL=1), and how its accuracy is measured
  // (`fp4llm eval --prefill-products fp8`). Off: the products below.
  static constexpr int64_t kFp8PrefillAbove = 64;
  void set_fp8_prefill(bool on) { fp8_prefill_ = on; }
  // On (the default): activations rounded to BF16 where they enter a matrix product (q/k/v,
  // o_proj, gate/up, down, the experts', lm_head), float32 sums: what the GPU computes (its
  // activation buffers are BF16) and what a BF16 transformers model feeds its linears. Off:
  // float32 activations (`eval --prefill-products float32`, and tests that check the formulas
  // against float64 without BF16 rounding boundaries). The router's input is BF16 either way.
  void set_bf16_products(bool on) { bf16_products_ = on; }

 private:
  struct Tokens;  // the batch flattened to one row per new token
  // The block table of `layer`'s cache: the window table for sliding layers with a window pool.
  std::span<const int32_t> cache_table(int64_t layer, const SequenceChunk& seq) const;
  void attention_block(int64_t layer, const Tokens& t, std::vector<float>& x);
  void attend(int64_t layer, const Tokens& t, const std::vector<float>& q, std::vector<float>& out);
  void mlp_block(int64_t layer, const Tokens& t, std::vector<float>& x);
  void dense_mlp(const MlpWeights& m, const float* h, int64_t rows, float* out, bool fp8 = false);
  // linear(), or linear_fp8() where `fp8` and the weight is NVFP4.
  void project(const LinearWeight& w, const float* x, int64_t rows, float* y, bool fp8) const;
  bool fp8_step(int64_t tokens) const { return fp8_prefill_ && tokens > kFp8PrefillAbove; }
  void moe_mlp(const MoeWeights& m, const float* h, int64_t rows, float* out);
  void norm_rows(float* x, int64_t rows, std::span<const float> w) const;
  // Row-parallel products (o_proj, down_proj, the MoE combine) hold this rank's share.
  void sum_over_ranks(std::vector<float>& shares);
  void lm_head(const std::vector<float>& h, int64_t rows, std::vector<float>& logits);

  const ModelWeights& w_;
  RankLink link_;
  bool fp8_prefill_ = false, bf16_products_ = true;
  KvCache kv_;
  std::vector<float> inv_freq_full_, inv_freq_sliding_;
};

}  // namespace fp4llm::cpu
