// The routing stage of a Qwen3-MoE layer on the GPU, with no host round trip (so a decode step
// stays one CUDA graph): pick each token's experts and group the routed rows by expert for the
// grouped NVFP4 kernels (nvfp4_linear.hpp).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/deferred_norm.hpp"

namespace fp4llm::cuda {

constexpr int64_t kMaxExperts = 512;  // register bound of the selection kernel (16 per lane)
constexpr int64_t kMaxTopK = 32;
constexpr int64_t kMaxRouterHidden = 4096;  // router row in registers (16 pieces per lane)

struct RouterShape {
  int64_t hidden = 0, experts = 0, top_k = 0;
  bool norm_topk_prob = false;
  // Expert parallelism: this GPU holds experts [first_expert, first_expert + local_experts) (all
  // when local_experts is 0). Routing still chooses among all experts; only local choices are
  // grouped (by local index) and the others get weight 0.
  int64_t first_expert = 0, local_experts = 0;
  __host__ __device__ int64_t local() const { return local_experts ? local_experts : experts; }
};

// Where moe_route writes (device arrays). Routed row t * top_k + c is token t's choice c.
struct Routing {
  float* logits;            // [tokens][experts] scratch
  int32_t* topk_expert;     // [tokens][top_k]
  float* topk_weight;       // [tokens][top_k]
  int32_t* group_expert;    // ExpertRows' arrays: [min(experts, routed)]
  int32_t* group_offset;    // [min(experts, routed) + 1]
  int32_t* num_groups;      // [1]
  int32_t* row_token;       // [routed]
  int32_t* row_slot;        // [routed]
  unsigned long long* active;  // may be null: accumulates the distinct experts used (benchmark floor)
};

// Throws Error naming what the routing kernels cannot do (expert count, top-k, hidden size, a
// local expert range outside the experts).
void check_router_shape(const RouterShape& shape);

// Two launches: router logits h W^T (BF16 weight [experts, hidden], float32 sums); then, in one
// block, softmax over all experts in float32, the top_k largest probabilities (the lower expert
// first on ties, as a stable sort), renormalised to sum 1 when norm_topk_prob, and a counting
// sort of the routed rows by expert (groups in increasing expert order) for ExpertRows; with
// expert parallelism only the local experts' rows, the other choices' weights set to 0.
// deferred (FP4LLM_NORM_DEFERRED=router): h is the stream times the norm's gains, and each token's
// logits are scaled by 1 / rms from the partial sums o_proj left (deferred_norm.hpp).
void moe_route(const __nv_bfloat16* router, const __nv_bfloat16* h, int64_t tokens, const RouterShape& shape,
               const Routing& out, cudaStream_t stream, const DeferredNorm* deferred = nullptr);

// The same with h made by the router kernel itself: h = rmsnorm(residual row) * gain(weight) in
// BF16, stored to h_out for the experts' products, so that no norm kernel runs before the
// routing (MoE models' default, FP4LLM_NORM_PROLOGUE; up to kMaxNormedRouterTokens tokens).
constexpr int64_t kMaxNormedRouterTokens = 2;
struct NormedRouterInput {
  const float* residual = nullptr;  // [tokens][hidden] float32
  const float* weight = nullptr;    // [hidden]
  float eps = 1e-6f;
  bool one_plus = false;
  __nv_bfloat16* h_out = nullptr;   // [tokens][hidden]
};
void moe_route_normed(const __nv_bfloat16* router, const NormedRouterInput& in, int64_t tokens, const RouterShape& shape,
                      const Routing& out, cudaStream_t stream);

// Only the first launch of either (the logits into out.logits, from h or, with `normed`, from the
// residual stream): the experts' gate/up product then routes the step itself
// (nvfp4_experts_gated_routed, FP4LLM_ROUTING_IN_EXPERTS=1).
void moe_router_logits(const __nv_bfloat16* router, const __nv_bfloat16* h, const NormedRouterInput* normed,
                       int64_t tokens, const RouterShape& shape, const Routing& out, cudaStream_t stream,
                       const DeferredNorm* deferred = nullptr);

}  // namespace fp4llm::cuda
