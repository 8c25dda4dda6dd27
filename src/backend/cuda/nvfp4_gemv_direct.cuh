// The register-pipelined decode GEMV, which takes up to 16 rows (nvfp4_linear.cu), written
// against the instruction-issue bound of the copy ring (161 warp instructions per 576-byte chunk,
// H200, 2026-12-04): weights and scales go straight to registers with one 16-byte and one 2-byte
// load per lane per chunk, the next kGroup chunks requested before this group's arithmetic; x
// comes from L1 through pointers computed once per work item (the chunk loop is
// gemv_lean_loop.cuh). Tokens past the slice read a valid row of x: their MMA columns are never
// written out. Expert groups wait for the routing kernel before anything else; plain products
// request their first weights before waiting for the kernel that writes x (which only matters
// when launched early, dependent_launch.cuh). kNormIn (plain products of up to kNormInRows rows):
// x is normalised by the kernel itself from the residual stream (gemv_norm_prologue.cuh), into
// dynamic shared memory.
#pragma once

#include "backend/cuda/gemv_lean_loop.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"

namespace fp4llm::cuda {

namespace {

// Blocks per SM the registers are budgeted for at up to 8 rows (tools/gpu_gemv_compare.sh varies it).
#ifndef FP4LLM_GEMV_DIRECT_BLOCKS
#define FP4LLM_GEMV_DIRECT_BLOCKS 4
#endif

template <int NT, bool kGrouped, bool kNormIn = false>
__global__ void __launch_bounds__(kWarps * 32, NT == 1 ? FP4LLM_GEMV_DIRECT_BLOCKS : 3) nvfp4_gemv_direct_kernel(GemvArgs p) {
  static_assert(!kNormIn || (NT == 1 && !kGrouped), "the norm prologue serves plain products of up to kNormInRows rows");
  extern __shared__ uint4 normed_rows[];  // kNormIn: [rows][normed_row_stride(k)] BF16
  Slice s;
  if (!enter_block<NT, kGrouped>(p, s)) return;
  const WorkItem item(p);
  const size_t first = (size_t(item.tile) * p.k_chunks + item.begin) * 32 + item.lane;
  float acc[NT][4] = {};
  lean_item<NT, kGrouped, kNormIn>(p, s, item, s.packed + first, s.scales + first, acc,
                                   reinterpret_cast<__nv_bfloat16*>(normed_rows));
  finish_item<NT, kGrouped>(p, s, item, acc);
}

}  // namespace

}  // namespace fp4llm::cuda
