// The direct GEMV taking its input as the next RMSNorm gives it (FP4LLM_NORM_PROLOGUE=1, not yet
// measured): every block computes rmsnorm(residual row) * gain in BF16 for its rows into shared
// memory, from the float32 residual stream the previous product added into, instead of a norm
// kernel writing them for it. At batch 1 that norm kernel is one block's latency chain and one
// more grid-wide wait between two GEMVs (about 3.5 us each, two per layer: docs/PERFORMANCE.md);
// here each block re-reads its rows from L2 (16 KB per row at 4,096 wide) while its first weights
// are in flight. That re-reading is the price: with a block per tile it would add 4/9 of the
// weights' bytes in L2 reads per row, so these launches take at least 16 chunks per warp (a block
// holds two tiles or more: at most 2/9 per row, measured no slower at batch 1 in the fourth round)
// and at most kNormInRows rows.
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace fp4llm::cuda {

namespace {

constexpr int kNormInRows = 2;

// BF16 elements of one row in shared memory: K and 16 bytes, so that the rows of a warp's lanes
// (one 16-byte load each) fall in different banks.
__host__ __device__ constexpr int normed_row_stride(int k) { return k + 8; }

// The rows' normalised values into xs ([rows][normed_row_stride(k)] BF16), every thread of the
// block taking part (barriers). Two passes over each row, the second from L1 (a row is 16 KB at
// 4,096 wide, beside at most 2 x 8 KB of shared memory per block).
__device__ __forceinline__ void normed_rows_to_shared(const GemvArgs& p, __nv_bfloat16* xs) {
  __shared__ float warp_part[kWarps][kNormInRows];
  __shared__ float inv[kNormInRows];
  const int quads = p.k / 4, lane = int(threadIdx.x & 31), warp = int(threadIdx.x >> 5);
  float ss[kNormInRows] = {};
#pragma unroll
  for (int r = 0; r < kNormInRows; ++r) {
    if (r >= p.rows) break;
    const float4* row = reinterpret_cast<const float4*>(p.norm_x + size_t(r) * p.k);
    for (int i = int(threadIdx.x); i < quads; i += kWarps * 32) ss[r] += sum_squares(row[i]);
  }
#pragma unroll
  for (int r = 0; r < kNormInRows; ++r) {
    const float w = warp_sum(ss[r]);
    if (lane == 0) warp_part[warp][r] = w;
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int r = 0; r < kNormInRows; ++r) {
      const float total = warp_sum(lane < kWarps ? warp_part[lane][r] : 0.0f);
      if (lane == 0) inv[r] = rsqrtf(total / float(p.k) + p.norm_eps);
    }
  }
  __syncthreads();
  const int stride = normed_row_stride(p.k);
  for (int r = 0; r < p.rows; ++r) {
    const float4* row = reinterpret_cast<const float4*>(p.norm_x + size_t(r) * p.k);
    const float4* gain = reinterpret_cast<const float4*>(p.norm_w);
    uint2* out = reinterpret_cast<uint2*>(xs + size_t(r) * stride);  // 4 values, one 8-byte store
    for (int i = int(threadIdx.x); i < quads; i += kWarps * 32) {
      const float4 v = row[i], w = gain4(gain[i], p.norm_one_plus);
      out[i] = make_uint2(as_u32(__floats2bfloat162_rn(v.x * inv[r] * w.x, v.y * inv[r] * w.y)),
                          as_u32(__floats2bfloat162_rn(v.z * inv[r] * w.z, v.w * inv[r] * w.w)));
    }
  }
  __syncthreads();
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
