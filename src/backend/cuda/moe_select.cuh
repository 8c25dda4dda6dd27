// One token's expert choice (softmax over the router logits, top-k), by one warp: shared by the
// routing kernel (moe_routing.cu) and the expert gate/up GEMV that routes a step of one or two
// tokens itself (nvfp4_gemv_direct.cuh with FP4LLM_ROUTING_IN_EXPERTS=1), so both choose alike.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/moe_routing.hpp"

namespace fp4llm::cuda {

namespace {

// The larger of two (probability, expert) candidates; the lower expert on equal probability.
__device__ __forceinline__ void keep_better(float& p, int& e, float op, int oe) {
  if (op > p || (op == p && oe < e)) p = op, e = oe;
}

// One token's softmax and top-k in one warp: lane L holds experts L, L + 32, ... in registers
// (kPerLane of them: up to 32 x kPerLane experts). Lane c ends with choice c (expert,
// probability); returns the chosen probabilities' sum.
template <int kPerLane>
__device__ float select_top_k_of(const float* logit_row, int experts, int top_k, int lane, int& my_expert,
                                 float& my_prob) {
  float p[kPerLane];
  float m = -INFINITY;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    p[j] = lane + 32 * j < experts ? __ldcg(logit_row + lane + 32 * j) : -INFINITY;  // past L1: other blocks wrote them
    m = fmaxf(m, p[j]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  float sum = 0;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    p[j] = lane + 32 * j < experts ? expf(p[j] - m) : -1.0f;  // -1: no expert here
    sum += fmaxf(p[j], 0.0f);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  float chosen = 0;
  for (int c = 0; c < top_k; ++c) {
    float best = -1.0f;
    int e = experts;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) keep_better(best, e, p[j], lane + 32 * j);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      keep_better(best, e, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, e, o));
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      if (lane + 32 * j == e) p[j] = -1.0f;  // taken (probabilities are >= 0)
    best /= sum;
    chosen += best;
    if (lane == c) my_expert = e, my_prob = best;
  }
  return chosen;
}

// The same for any expert count up to kMaxExperts: Qwen3-MoE's 128 experts take 4 registers a
// lane instead of 16, which shortens each of the top-k rounds' dependent compare chain.
__device__ __forceinline__ float select_top_k(const float* logit_row, int experts, int top_k, int lane, int& my_expert,
                                              float& my_prob) {
  if (experts <= 128) return select_top_k_of<4>(logit_row, experts, top_k, lane, my_expert, my_prob);
  return select_top_k_of<int(kMaxExperts / 32)>(logit_row, experts, top_k, lane, my_expert, my_prob);
}

// A step of up to kMaxRoutedInBlock routed rows (tokens x top_k) as one block routes it for
// itself: the same choices and weights as select_and_group (moe_routing.cu), groups in increasing
// expert order, and within a group the rows in routed-row order (select_and_group's order there
// follows its atomics; a row's product does not depend on it). Every block computes the same.
constexpr int kMaxRoutedInBlock = 32;
struct BlockRoute {
  int32_t group_expert[kMaxRoutedInBlock];
  int32_t group_offset[kMaxRoutedInBlock + 1];
  int32_t num_groups;
  int32_t row_token[kMaxRoutedInBlock];
};

// Warp 0 routes `tokens` tokens (tokens * top_k <= kMaxRoutedInBlock; all experts local) from
// their logits into `r`, lane i taking routed row i; the grid's first block also stores the
// routing where select_and_group does (`out`), for the down projection and the combine after it.
// Every thread of the block calls it (one barrier).
__device__ void route_in_block(const float* logits, int tokens, int experts, int top_k, bool norm_topk_prob,
                               const Routing& out, BlockRoute& r) {
  if (threadIdx.x < 32) {
    const unsigned all = 0xffffffffu;
    const int lane = int(threadIdx.x), routed = tokens * top_k;
    int my_expert = 0;
    float my_weight = 0.0f;
    for (int t = 0; t < tokens; ++t) {  // token t's choice c lands in lane t * top_k + c
      int expert = 0;
      float prob = 0.0f;
      const float chosen = select_top_k(logits + size_t(t) * experts, experts, top_k, lane, expert, prob);
      const float weight = norm_topk_prob ? prob / chosen : prob;
      const int from = lane - t * top_k;
      const int e = __shfl_sync(all, expert, from & 31);
      const float w = __shfl_sync(all, weight, from & 31);
      if (from >= 0 && from < top_k) my_expert = e, my_weight = w;
    }
    const bool live = lane < routed;
    // Position by (expert, routed row); the first row of each expert opens its group, whose index
    // is the number of groups of lower experts.
    int rank = 0, group = 0;
    bool opens = live;
    for (int j = 0; j < routed; ++j) {
      const int e = __shfl_sync(all, my_expert, j);
      rank += e < my_expert || (e == my_expert && j < lane);
      if (e == my_expert && j < lane) opens = false;
    }
    for (int j = 0; j < routed; ++j) {
      const int e = __shfl_sync(all, my_expert, j);
      const bool o = __shfl_sync(all, opens, j);
      group += o && e < my_expert;
    }
    const int groups = __popc(__ballot_sync(all, opens));
    const bool store = blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0;
    if (live) {
      r.row_token[rank] = lane / top_k;
      if (opens) r.group_expert[group] = my_expert, r.group_offset[group] = rank;
      if (store) {
        out.topk_expert[lane] = my_expert;
        out.topk_weight[lane] = my_weight;
        out.row_token[rank] = lane / top_k;
        out.row_slot[rank] = lane;
        if (opens) out.group_expert[group] = my_expert, out.group_offset[group] = rank;
      }
    }
    if (lane == 0) {
      r.num_groups = groups;
      r.group_offset[groups] = routed;
      if (store) {
        *out.num_groups = groups;
        out.group_offset[groups] = routed;
        if (out.active) atomicAdd(out.active, (unsigned long long)groups);
      }
    }
  }
  __syncthreads();
}

}  // namespace

}  // namespace fp4llm::cuda
