// The residual stream's next RMSNorm, taken at the end of the GEMV that adds into it, for decode
// batches of up to 16 rows (the direct kernel's). At batch 1 the separate norm kernel costs a launch and about
// 3.5 us of latency for 16 KB of work (Nsight Compute, H200, docs/PERFORMANCE.md); here every
// block counts itself done and the last one normalises the rows from L2, a warp per row at a time.
#pragma once

#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace fp4llm::cuda {

namespace {

// A separate kernel argument, so that the other GEMV instances keep GemvArgs (and their
// register allocation) as measured.
struct NormArgs {
  const float* next_w = nullptr;      // [n] the next norm's weight; null: no norm
  __nv_bfloat16* normed = nullptr;    // [rows][n] rmsnorm(y) * gain(next_w)
  unsigned int* blocks_done = nullptr;  // [1], zero between launches
  float eps = 0;
  bool one_plus = false;              // Gemma's (1 + w) gain
};

// One warp: out = y * rsqrt(mean(y^2) + eps) * gain, y read past L1 (other SMs wrote it).
__device__ __forceinline__ void norm_row(const float* y, int n, const NormArgs& p, __nv_bfloat16* out, int lane) {
  const float4* row = reinterpret_cast<const float4*>(y);
  const int quads = n / 4;
  float ss = 0;
#pragma unroll 8
  for (int i = lane; i < quads; i += 32) {
    const float4 v = __ldcg(row + i);
    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  const float inv = rsqrtf(warp_sum(ss) / float(n) + p.eps);
  const float4* w = reinterpret_cast<const float4*>(p.next_w);
  __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(out);
#pragma unroll 8
  for (int i = lane; i < quads; i += 32) {
    const float4 v = __ldcg(row + i);
    float4 g = __ldg(w + i);
    if (p.one_plus) g = make_float4(1 + g.x, 1 + g.y, 1 + g.z, 1 + g.w);
    o[2 * i] = __floats2bfloat162_rn(v.x * inv * g.x, v.y * inv * g.y);
    o[2 * i + 1] = __floats2bfloat162_rn(v.z * inv * g.z, v.w * inv * g.w);
  }
}

// Every thread of every block calls this once, after its last write of y.
__device__ __forceinline__ void finish_with_norm(const GemvArgs& p, const NormArgs& norm) {
  __shared__ bool last;
  __threadfence();  // this thread's part of y is visible before the count says the block is done
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(norm.blocks_done, 1u) == gridDim.x * gridDim.y * gridDim.z - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();  // and the other blocks' parts are seen here
  const int warp = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
  for (int row = warp; row < p.rows; row += kWarps)
    norm_row(p.y + size_t(row) * p.n, p.n, norm, norm.normed + size_t(row) * p.n, lane);
  if (threadIdx.x == 0) *norm.blocks_done = 0;  // ready for the next launch or graph replay
}

}  // namespace

}  // namespace fp4llm::cuda
