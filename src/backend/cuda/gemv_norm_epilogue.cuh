// The residual stream's update and next RMSNorm, taken at the end of the GEMV whose product
// feeds it, for decode batches of up to 16 rows (the direct kernel's). At batch 1 the separate
// norm kernel costs a launch and about 3.5 us of latency for 16 KB of work (Nsight Compute,
// H200, docs/PERFORMANCE.md); here every block counts itself done and the last one finishes the
// rows from L2, a warp per row at a time. Qwen3: the GEMV added its product into the residual
// stream y, which is normalised. Gemma3 (sandwich norms): y holds the product, normalised with
// post_w and added into `residual`, which is then normalised. Qwen3-MoE: y holds the chosen
// experts' rows, whose router-weighted sum is added into `residual`, then normalised.
#pragma once

#include "backend/cuda/last_block.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace fp4llm::cuda {

namespace {

// What a GEMV block does after its last write of y, every thread of every block (blocks without
// work too); a separate kernel argument, so that the plain instances keep GemvArgs (and their
// register allocation) as measured. NoEpilogue: nothing.
struct NoEpilogue {
  static constexpr bool kActive = false;
  __device__ void finish(const GemvArgs&) const {}
};

struct NormArgs;
__device__ __forceinline__ void finish_with_norm(const GemvArgs& p, const NormArgs& norm);

struct NormArgs {
  static constexpr bool kActive = true;
  const float* next_w = nullptr;      // [n] the next norm's weight
  __nv_bfloat16* normed = nullptr;    // [rows][n] rmsnorm(residual stream) * gain(next_w)
  unsigned int* blocks_done = nullptr;  // [1], zero between launches
  float* residual = nullptr;          // Gemma3, MoE: the residual stream [rows][n]; null: y is the stream
  const float* post_w = nullptr;      // Gemma3: the product's own norm weight
  float eps = 0;
  bool one_plus = false;              // Gemma's (1 + w) gain
  const float* expert_weights = nullptr;  // MoE: [tokens][top_k] router weights; y holds [tokens][top_k][n]
  int top_k = 0;
  __device__ void finish(const GemvArgs& p) const { finish_with_norm(p, *this); }
};

// Quad i of a norm's gain.
__device__ __forceinline__ float4 load_gain4(const float* w, int i, bool one_plus) {
  return gain4(__ldg(reinterpret_cast<const float4*>(w) + i), one_plus);
}

// 1 / rms of a row (one warp), read past L1: other SMs wrote it.
__device__ __forceinline__ float inv_rms(const float4* row, int n, float eps, int lane) {
  float ss = 0;
#pragma unroll 8
  for (int i = lane; i < n / 4; i += 32) {
    ss += sum_squares(__ldcg(row + i));
  }
  return rsqrtf(warp_sum(ss) / float(n) + eps);
}

// Gemma3: residual += rmsnorm(product) * gain(post_w), one warp over one row.
__device__ __forceinline__ void add_normalised(const float4* product, float4* residual, int n, const NormArgs& p,
                                               int lane) {
  const float inv = inv_rms(product, n, p.eps, lane);
#pragma unroll 8
  for (int i = lane; i < n / 4; i += 32) {
    const float4 d = __ldcg(product + i), g = load_gain4(p.post_w, i, p.one_plus);
    float4 v = __ldcg(residual + i);
    v.x += d.x * inv * g.x, v.y += d.y * inv * g.y, v.z += d.z * inv * g.z, v.w += d.w * inv * g.w;
    residual[i] = v;
  }
  __syncwarp();  // the lanes' stores, before the warp reads the row back
}

// MoE: residual += sum_c weights[c] * products[c] (the chosen experts' rows of one token, in
// choice order, as add_weighted_and_norm sums them), one warp over one token.
__device__ __forceinline__ void add_weighted(const float4* products, const float* weights, int top_k, float4* residual,
                                             int n, int lane) {
  for (int i = lane; i < n / 4; i += 32) {
    float4 d = make_float4(0, 0, 0, 0);
    for (int c = 0; c < top_k; ++c) {
      const float w = weights[c];
      if (w == 0.0f) continue;  // another GPU's expert: its row is not written here
      const float4 v = __ldcg(products + size_t(c) * (n / 4) + i);
      d.x += w * v.x, d.y += w * v.y, d.z += w * v.z, d.w += w * v.w;
    }
    float4 v = __ldcg(residual + i);
    v.x += d.x, v.y += d.y, v.z += d.z, v.w += d.w;
    residual[i] = v;
  }
  __syncwarp();
}

// out = row * rsqrt(mean(row^2) + eps) * gain(next_w), one warp.
__device__ __forceinline__ void norm_row(const float4* row, int n, const NormArgs& p, __nv_bfloat16* out, int lane) {
  const float inv = inv_rms(row, n, p.eps, lane);
  __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(out);
#pragma unroll 8
  for (int i = lane; i < n / 4; i += 32) {
    const float4 v = __ldcg(row + i), g = load_gain4(p.next_w, i, p.one_plus);
    o[2 * i] = __floats2bfloat162_rn(v.x * inv * g.x, v.y * inv * g.y);
    o[2 * i + 1] = __floats2bfloat162_rn(v.z * inv * g.z, v.w * inv * g.w);
  }
}

__device__ __forceinline__ void finish_with_norm(const GemvArgs& p, const NormArgs& norm) {
  if (!last_block_done(norm.blocks_done, gridDim.x * gridDim.y * gridDim.z)) return;
  const int warp = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
  for (int row = warp; row < p.rows; row += kWarps) {  // rows: tokens (for expert groups, the most a group holds)
    const float4* stream = reinterpret_cast<const float4*>(p.y + size_t(row) * p.n);
    if (norm.residual) {
      auto* residual = reinterpret_cast<float4*>(norm.residual + size_t(row) * p.n);
      if (norm.expert_weights)
        add_weighted(reinterpret_cast<const float4*>(p.y + size_t(row) * norm.top_k * p.n),
                     norm.expert_weights + size_t(row) * norm.top_k, norm.top_k, residual, p.n, lane);
      else
        add_normalised(stream, residual, p.n, norm, lane);
      stream = residual;
    }
    norm_row(stream, p.n, norm, norm.normed + size_t(row) * p.n, lane);
  }
}

}  // namespace

}  // namespace fp4llm::cuda
