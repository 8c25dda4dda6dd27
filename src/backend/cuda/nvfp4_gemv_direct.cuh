// The register-pipelined decode GEMV, which takes up to 16 rows (nvfp4_linear.cu), written
// against the instruction-issue bound of the copy ring (161 warp instructions per 576-byte chunk,
// H200, 2026-12-04): weights and scales go straight to registers with one 16-byte and one 2-byte
// load per lane per chunk, the next kGroup chunks requested before this group's arithmetic; x
// comes from L1 through pointers computed once per work item (the chunk loop is
// gemv_lean_loop.cuh). Tokens past the slice read a valid row of x: their MMA columns are never
// written out. Expert groups wait for the routing kernel before anything else; plain products
// request their first weights before waiting for the kernel that writes x (which only matters
// when launched early, dependent_launch.cuh); each block lets the next kernel be scheduled at its
// start, or with FP4LLM_PDL_TRIGGER=after_wait once its wait is over (GemvArgs). kNormIn (plain products of up to kNormInRows rows):
// x is normalised by the kernel itself from the residual stream (gemv_norm_prologue.cuh), into
// dynamic shared memory. FP4LLM_L2_AHEAD: each block first asks L2 for its share of a weight
// (its own, or the next product's; l2_ahead.hpp). FP4LLM_NORM_DEFERRED: plain products may end
// with the deferred norm's epilogues (gemv_deferred_norm.cuh).
#pragma once

#include "backend/cuda/gemv_deferred_norm.cuh"
#include "backend/cuda/gemv_lean_loop.cuh"
#include "backend/cuda/l2_prefetch.cuh"
#include "backend/cuda/moe_select.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"

namespace fp4llm::cuda {

namespace {

// Blocks per SM the registers are budgeted for at up to 8 rows (tools/gpu_gemv_compare.sh varies it).
#ifndef FP4LLM_GEMV_DIRECT_BLOCKS
#define FP4LLM_GEMV_DIRECT_BLOCKS 4
#endif

// kRouteIn (expert groups of a step of one or two tokens, FP4LLM_ROUTING_IN_EXPERTS=1): each
// block routes the step itself from the router's logits (moe_select.cuh) instead of reading what
// a selection kernel wrote, so that kernel and its grid-wide wait drop out of the layer; the
// first block stores the routing for the kernels after it.
// W: warps per block (kWarps; kWideWarps for plain products of one token group, by default where
// they fit one wave, FP4LLM_GEMV_BLOCK_WARPS; of two with =16-nt2: two blocks per SM, 64 registers).
// kSliceLoop (expert groups of more than 8 possible rows, FP4LLM_EXPERTS_SLICE_LOOP=1): one token
// group's kernel (64 registers with 16 bytes spilled, 4 blocks a SM) whose block walks its
// group's rows 8 at a time, the weights of the slices after the first read again (from L2),
// instead of a kernel sized for every row the group might hold.
template <int NT, bool kGrouped, bool kNormIn = false, bool kRouteIn = false, bool kSkipPadded = false, int W = kWarps,
          bool kSliceLoop = false>
__global__ void __launch_bounds__(W * 32, W == kWideWarps ? 2 : NT == 1 ? FP4LLM_GEMV_DIRECT_BLOCKS : 3)
    nvfp4_gemv_direct_kernel(GemvArgs p) {
  static_assert(W == kWarps || (NT <= 2 && !kGrouped && !kNormIn), "wide blocks take plain products of one or two token groups");
  static_assert(!kSliceLoop || (NT == 1 && kGrouped && !kRouteIn), "the slice loop walks expert groups 8 rows at a time");
  static_assert(!kNormIn || (NT == 1 && !kGrouped), "the norm prologue serves plain products of up to kNormInRows rows");
  static_assert(!kRouteIn || (NT == 1 && kGrouped), "a block routes expert groups of a few tokens");
  extern __shared__ uint4 normed_rows[];  // kNormIn: [rows][normed_row_stride(k)] BF16
  if (!p.l2_per_expert) request_share_to_l2(p.l2_packed, p.l2_scales, p.l2_slots);  // before any wait: FP4LLM_L2_AHEAD
  Slice s;
  if constexpr (kRouteIn) {
    __shared__ BlockRoute route;
    wait_and_let_dependents(p);  // the logits are the router kernel's
    route_in_block(p.route_logits, p.route_tokens, p.route_experts, p.route_top_k, p.route_norm_topk_prob, p.route_out,
                   route);
    if (!group_slice<NT>(p, {route.group_expert, route.group_offset, &route.num_groups, route.row_token}, s)) return;
    if (p.l2_per_expert)  // FP4LLM_L2_AHEAD=down: this block's share of its expert's down weights
      request_expert_share_to_l2(p.l2_packed, p.l2_scales, p.l2_slots, size_t(route.group_expert[blockIdx.y]));
    if (p.l2_own_routed)  // FP4LLM_L2_AHEAD=gate_up: all of this block's own weights at once
      request_tiles_to_l2(s.packed, s.scales, int(blockIdx.x) * (W / p.splits), W / p.splits, p.row_tiles, p.k_chunks);
  } else if (!enter_block<NT, kGrouped>(p, s)) {
    return;
  }
  const WorkItem item(p, W);
  const size_t first = (size_t(item.tile) * p.k_chunks + item.begin) * 32 + item.lane;
  // kSliceLoop: the slices of the group one after another, one copy of the loop in the code.
  const int group_end = kSliceLoop ? p.group_offset[blockIdx.y + 1] : 0;
  for (;;) {
    float acc[NT][4] = {};
    lean_item<NT, kGrouped, kNormIn, kSkipPadded>(p, s, item, s.packed + first, s.scales + first, acc,
                                                  reinterpret_cast<__nv_bfloat16*>(normed_rows));
    finish_item<NT, kGrouped, W>(p, s, item, acc);
    if constexpr (!kSliceLoop) break;
    s.begin += 8;
    if (s.begin >= group_end) break;
    s.rows = min(group_end - s.begin, 8);
    __syncthreads();  // the split sums of the slice before are read
  }
}

}  // namespace

}  // namespace fp4llm::cuda
