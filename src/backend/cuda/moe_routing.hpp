// The routing stages of a Qwen3-MoE layer on the GPU, each one launch with no host round trip
// (so a decode step stays one CUDA graph): pick each token's experts, group the routed rows by
// expert for the grouped NVFP4 kernels (nvfp4_linear.hpp), and add the weighted expert outputs
// back into the residual stream in token order.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fp4llm::cuda {

constexpr int64_t kMaxExperts = 512;  // shared-memory bound of the routing kernels
constexpr int64_t kMaxTopK = 32;

struct RouterShape {
  int64_t hidden = 0, experts = 0, top_k = 0;
  bool norm_topk_prob = false;
};

// Router logits h W^T (BF16 weight [experts, hidden]), softmax over all experts in float32, the
// top_k largest probabilities (the lower expert first on ties, as a stable sort), renormalised
// to sum 1 when norm_topk_prob. Writes [tokens][top_k] experts and weights.
void moe_route(const __nv_bfloat16* router, const __nv_bfloat16* h, int64_t tokens, const RouterShape& shape,
               int32_t* topk_expert, float* topk_weight, cudaStream_t stream);

// Counting sort of the routed rows (token t's choice c is row t * top_k + c) by expert: the
// arrays of ExpertRows, experts in increasing order. `active` (may be null) accumulates the
// number of distinct experts used, for the benchmark's bandwidth floor.
struct ExpertGrouping {
  int32_t* group_expert;  // [min(experts, routed)]
  int32_t* group_offset;  // [min(experts, routed) + 1]
  int32_t* num_groups;    // [1]
  int32_t* row_token;     // [routed]
  int32_t* row_slot;      // [routed]
  unsigned long long* active;
};
void moe_group(const int32_t* topk_expert, int64_t tokens, int64_t top_k, int64_t experts, const ExpertGrouping& out,
               cudaStream_t stream);

// x[t] += sum over c of topk_weight[t][c] * expert_out[t * top_k + c] (float32, c in order).
void moe_combine(const float* expert_out, const float* topk_weight, int64_t tokens, int64_t top_k, int64_t hidden,
                 float* x, cudaStream_t stream);

}  // namespace fp4llm::cuda
