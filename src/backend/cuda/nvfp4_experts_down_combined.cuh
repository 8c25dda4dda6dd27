// Qwen3-MoE's experts' down projection of a one-token step with their weighted sum and the next
// layer's norm deferred (FP4LLM_NORM_DEFERRED, gemv_deferred_norm.cuh), in one kernel: block b
// takes the 16 output rows of tile b for every chosen expert, warp r the routed row r (K, the
// expert's 768 features, whole: 12 chunks), so the block holds the weighted sum of its rows
// complete and updates the residual stream itself. Written against what the default path costs
// on the step's critical path at batch 1 (kernel trace, twenty-third and twenty-fourth sessions):
// the grouped down projection writes the eight experts' rows, and the next qkv's 160 blocks each
// read them back with the stream (72 KB a block from L2) to combine and normalise them before
// their first MMA, 10.6 us a layer for 2 us of weights. Here the qkv is a plain product of the BF16
// rows the down projection leaves (the deferred norm), and the down projection's warps do as much
// work as the grouped kernel's (one 16-row tile of one expert each, 128 blocks of 8 warps).
#pragma once

#include "backend/cuda/gemv_deferred_norm.cuh"
#include "backend/cuda/gemv_lean_loop.cuh"
#include "backend/cuda/l2_prefetch.cuh"

namespace fp4llm::cuda {

namespace {

// The routed rows' weights in the sum (GemvArgs::y_rows is the rows' slots in it).
struct CombinedDown {
  const float* topk_weight;  // [top_k] of the step's token
  int top_k;
};

// The group (expert) holding routed row r: groups are in routed-row order.
__device__ __forceinline__ int group_of_row(const GemvArgs& p, int r) {
  int g = 0;
  while (g + 1 < *p.num_groups && p.group_offset[g + 1] <= r) ++g;
  return g;
}

__global__ void __launch_bounds__(kWarps * 32) nvfp4_experts_down_combined_kernel(GemvArgs p, CombinedDown c) {
  request_share_to_l2(p.l2_packed, p.l2_scales, p.l2_slots);  // the next qkv's weights (FP4LLM_L2_AHEAD=qkv)
  wait_and_let_dependents(p);  // the routing and the rows are the gate/up product's
  const int lane = int(threadIdx.x & 31), warp = int(threadIdx.x >> 5), tile = int(blockIdx.x);
  const bool live = warp < c.top_k;
  float acc[1][4] = {};
  if (live) {
    const int group = group_of_row(p, warp);
    Slice s = expert_slice(p, size_t(p.group_expert[group]), nullptr);
    s.begin = warp;  // x: the routed row's activations (gate/up wrote them in routed-row order)
    s.rows = 1;
    WorkItem item(p, kWarps);
    item.tile = tile, item.split = 0, item.begin = 0, item.end = p.k_chunks, item.live = true;
    const size_t first = size_t(tile) * p.k_chunks * 32 + lane;
    lean_item<1, false>(p, s, item, s.packed + first, s.scales + first, acc);
    // Column 0 (token 0) lives in lanes t = 0: rows g and g + 8, the expert's scales and weight applied.
    const float weight = c.topk_weight[p.y_rows[warp]] * kUnscale;
    acc[0][0] *= s.tile_scales[2 * tile] * weight;
    acc[0][2] *= s.tile_scales[2 * tile + 1] * weight;
  }
  __shared__ float rows[kWarps][16];
  if ((lane & 3) == 0) {
    rows[warp][lane >> 2] = live ? acc[0][0] : 0.0f;
    rows[warp][(lane >> 2) + 8] = live ? acc[0][2] : 0.0f;
  }
  __syncthreads();
  if (warp != 0) return;
  // Lanes 0-15: the tile's rows, summed over the routed rows in a fixed order.
  const int row = tile * 16 + (lane & 15);
  const bool mine = lane < 16 && row < p.n;
  float squares = 0.0f;
  if (mine) {
    float sum = 0.0f;
    for (int r = 0; r < kWarps; ++r) sum += rows[r][lane];
    const float v = p.y[row] + sum;
    p.y[row] = v;
    p.deferred_x[row] = __float2bfloat16_rn(v * p.deferred_gain[row]);
    squares = v * v;
  }
  squares = warp_sum(squares);
  if (lane == 0) p.deferred_sums_out[tile] = squares;
}

}  // namespace

}  // namespace fp4llm::cuda
