// The direct GEMV taking its input as the next RMSNorm gives it (MoE models' default,
// FP4LLM_NORM_PROLOGUE): every block computes rmsnorm(residual row) * gain in BF16 for its rows into shared
// memory, from the float32 residual stream the previous product added into, instead of a norm
// kernel writing them for it. At batch 1 that norm kernel is one block's latency chain and one
// more grid-wide wait between two GEMVs (about 3.5 us each, two per layer: docs/PERFORMANCE.md);
// here each block re-reads its rows from L2 (16 KB per row at 4,096 wide) while its first weights
// are in flight. That re-reading is the price: with a block per tile it would add 4/9 of the
// weights' bytes in L2 reads per row, so these launches take at least 8 chunks per warp
// (normed_min_chunks: 16 until the A/B of 2026-12-06 put 8 ahead on Qwen3-30B-A3B, nvfp4_linear.cu)
// and at most kNormInRows rows. After an MoE layer the qkv's blocks also read the token's expert
// rows (top_k of them, twice: 64 KB per pass at Qwen3-30B-A3B's 2,048 wide, about its blocks'
// own weight bytes): that bound does not hold there, and only the A/B decides.
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/rms_norm.cuh"

namespace fp4llm::cuda {

namespace {

constexpr int kNormInRows = 2;

// BF16 elements of one row in shared memory: K and 16 bytes, so that the rows of a warp's lanes
// (one 16-byte load each) fall in different banks.
__host__ __device__ constexpr int normed_row_stride(int k) { return k + 8; }

// The rows' normalised values into xs ([rows][normed_row_stride(k)] BF16), every thread of the
// block taking part (barriers).
__device__ __forceinline__ void normed_rows_to_shared(const GemvArgs& p, __nv_bfloat16* xs) {
  block_normed_rows<kNormInRows, kWarps * 32>(
      {p.norm_x, p.norm_w, p.norm_eps, p.norm_one_plus, p.norm_delta, p.norm_delta_w, p.norm_store,
       p.norm_delta_weights, p.norm_delta_count},
      p.rows, p.k, xs,
      normed_row_stride(p.k));
}

// This lane's x pointers into those rows, as x_pointers gives them in global memory.
template <int NT>
__device__ __forceinline__ void normed_x_pointers(const GemvArgs& p, const __nv_bfloat16* xs, int g, int t, int begin,
                                                  const uint4* (&xl)[NT]) {
  const int stride = normed_row_stride(p.k);
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int r = min(nt * 8 + g, p.rows - 1);
    xl[nt] = reinterpret_cast<const uint4*>(xs + size_t(r) * stride + size_t(begin) * 64 + t * 16);
  }
}

}  // namespace

}  // namespace fp4llm::cuda
