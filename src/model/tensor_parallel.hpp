// How a model splits over N GPUs (Megatron-style tensor parallelism, issue 8): which query and
// KV heads, MLP columns and vocabulary rows each rank holds, and the NVFP4 shards themselves.
// Column-parallel projections (q/k/v, gate/up, lm_head) keep whole output rows; row-parallel
// ones (o_proj, down_proj) split the input features at multiples of 16, so no NVFP4 block (and
// its E4M3 scale) straddles two ranks. Host code only: the layout is tested on the CPU.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "model/model_config.hpp"
#include "model/model_weights.hpp"
#include "model/weights.hpp"

namespace fp4llm {

struct TensorParallelPlan {
  int64_t size = 1;
  int64_t heads_per_rank = 0;
  int64_t kv_heads_per_rank = 0;  // 1 when the KV heads are replicated (fewer than ranks)
  bool kv_replicated = false;
  int64_t intermediate_per_rank = 0;
  int64_t vocab_per_rank = 0;     // vocab / size (the vocabulary must divide evenly)
  // MoE layers. Tensor-sharded (the default, as vLLM's): every rank holds all experts
  // (experts_per_rank of them), each a slice of moe_intermediate_per_rank columns. Expert parallel
  // (--enable-expert-parallel): each rank holds experts_per_rank whole experts.
  bool expert_parallel = false;
  int64_t experts_per_rank = 0;
  int64_t moe_intermediate_per_rank = 0;

  // Throws Error naming the dimension that does not divide (heads, KV heads, intermediate sizes
  // in blocks of 16, vocabulary, experts).
  static TensorParallelPlan make(const ModelConfig& config, int64_t size, bool expert_parallel = false);

  // Rows of q_proj (query heads), of k_proj/v_proj (its KV heads), and of gate/up (MLP columns)
  // held by `rank`, as [begin, end) over the full matrix's output features.
  struct Range {
    int64_t begin = 0, end = 0;
    int64_t size() const { return end - begin; }
  };
  Range q_rows(const ModelConfig& c, int64_t rank) const;
  Range kv_rows(const ModelConfig& c, int64_t rank) const;
  Range mlp_rows(int64_t rank) const;
  Range moe_rows(int64_t rank) const;  // each expert's gate/up rows (all of them: expert parallel)
  Range vocab_rows(int64_t rank) const;
  Range experts(int64_t rank) const;   // the experts `rank` holds (all of them: tensor-sharded)

  // One line for the start-up log: what each rank holds ("tensor parallel over 2 ranks: each
  // holds 16 of 32 query heads, 4 of 8 KV heads, ...").
  std::string describe(const ModelConfig& c) const;
};

// One rank's model. The config has the rank's query heads, KV heads and MLP width (hidden size
// and vocabulary unchanged: every rank embeds every token and sees the full logits after the
// gather); q/k/v and gate/up keep the rank's output rows, o_proj and down_proj its input
// columns, the lm_head its vocabulary rows, MoE layers every expert's slice (gate/up rows, down
// columns) or, expert parallel, the rank's whole experts (the router is shared: every rank
// routes every token); norms, embeddings and KV scales are shared.
struct RankWeights {
  ModelWeights weights;                 // points into the storage below and into the source
  std::deque<QuantizedLinear> linears;  // the rank's shards (stable addresses)
  std::deque<TensorView> tensors;       // views of 16-bit lm_head rows
};
ModelConfig rank_config(const ModelConfig& config, const TensorParallelPlan& plan);
// `weights` (and its checkpoint) must outlive the result. Throws Error for 16-bit projections.
std::unique_ptr<RankWeights> shard_weights(const ModelWeights& weights, const TensorParallelPlan& plan, int64_t rank);

// Output rows [begin, end) of `w`: a view sharing its bytes (rows are contiguous).
QuantizedLinear shard_rows(const QuantizedLinear& w, int64_t begin, int64_t end);
// Input features [begin, end) of `w`, multiples of 16: a copy (each row contributes a slice).
QuantizedLinear shard_columns(const QuantizedLinear& w, int64_t begin, int64_t end);

}  // namespace fp4llm
