// The pieces of an RMSNorm that every kernel taking one shares (layer_kernels.cu's norm and RoPE
// kernels, the GEMV's and the MoE router's norm prologue): the gain, Qwen3's w or Gemma3's 1 + w,
// a float4's sum of squares, a quad of MoE experts' weighted rows, and a block normalising a few
// rows into shared memory (with Gemma3's sandwich update or the experts' rows added first, where
// asked).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/warp_reduce.cuh"

namespace fp4llm::cuda {

__device__ __forceinline__ float norm_gain(const float* w, int64_t i, bool one_plus) {
  return one_plus ? 1.0f + w[i] : w[i];
}

__device__ __forceinline__ float4 gain4(float4 w, bool one_plus) {
  return one_plus ? make_float4(1 + w.x, 1 + w.y, 1 + w.z, 1 + w.w) : w;
}

__device__ __forceinline__ float sum_squares(float4 v) { return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w; }

// Quad i of sum_c weights[c] * rows[c] (the chosen experts' outputs of one token), in choice order.
// Eight choices at a time (Qwen3-MoE's top-k): their weights, then their rows, all requested
// before the first is used; one at a time, or four as the compiler unrolled it, each group was
// an L2 round trip on the path of every block that normalises a row after an MoE layer.
__device__ __forceinline__ float4 weighted_load4(const float* rows, const float* weights, int count, int64_t width,
                                                 int64_t i, bool valid) {
  constexpr int kBatch = 8;
  float4 sum = make_float4(0, 0, 0, 0);
  if (!valid) return sum;
  for (int c0 = 0; c0 < count; c0 += kBatch) {
    float w[kBatch];
    float4 v[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) w[j] = c0 + j < count ? weights[c0 + j] : 0.0f;
#pragma unroll
    for (int j = 0; j < kBatch; ++j)  // weight 0: another GPU's expert (expert parallelism), its row not written here
      v[j] = w[j] != 0.0f ? reinterpret_cast<const float4*>(rows + size_t(c0 + j) * width)[i] : make_float4(0, 0, 0, 0);
#pragma unroll
    for (int j = 0; j < kBatch; ++j)
      if (w[j] != 0.0f) sum.x += w[j] * v[j].x, sum.y += w[j] * v[j].y, sum.z += w[j] * v[j].z, sum.w += w[j] * v[j].w;
  }
  return sum;
}

// Rows to normalise: rmsnorm(x row) * gain(w) in BF16. With delta, the row is first updated as
// add_norm_kernel does, and the first block of the grid stores the updated rows to `store`
// (another buffer than x: the other blocks still read x): Gemma3's sandwich norms add
// rmsnorm(delta row) * gain(delta_w); an MoE layer's experts (delta_weights) add the weighted sum
// of each row's delta_count expert rows as it is.
struct NormSource {
  const float* x;  // [rows][k] float32 (the residual stream)
  const float* w;  // [k]
  float eps;
  bool one_plus;
  const float* delta = nullptr;    // [rows][k] the product to add, or [rows][delta_count][k] expert rows
  const float* delta_w = nullptr;  // [k] the product's norm gains (sandwich norms)
  float* store = nullptr;          // [rows][k] the updated rows (with delta)
  const float* delta_weights = nullptr;  // [rows][delta_count] the experts' router weights
  int delta_count = 0;
};

// The inverse RMS of each of kMaxRows per-thread partial sums of squares, by every thread of a
// block of kThreads (barriers); inv[r] for r < kMaxRows.
template <int kMaxRows, int kThreads>
__device__ __forceinline__ void block_inverse_rms(const float (&ss)[kMaxRows], int k, float eps, float (&inv)[kMaxRows]) {
  constexpr int kWarpsHere = kThreads / 32;
  __shared__ float warp_part[kWarpsHere][kMaxRows];
  __shared__ float result[kMaxRows];
  const int lane = int(threadIdx.x & 31), warp = int(threadIdx.x >> 5);
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    const float s = warp_sum(ss[r]);
    if (lane == 0) warp_part[warp][r] = s;
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int r = 0; r < kMaxRows; ++r) {
      const float total = warp_sum(lane < kWarpsHere ? warp_part[lane][r] : 0.0f);
      if (lane == 0) result[r] = rsqrtf(total / float(k) + eps);
    }
  }
  __syncthreads();
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) inv[r] = result[r];
}

// Element quad i of row r as the norm sees it: x, or with delta x + delta * inv_delta * gain, or
// with expert rows x + their weighted sum.
__device__ __forceinline__ float4 updated_quad(const NormSource& src, int r, int i, int k, float inv_delta) {
  float4 v = reinterpret_cast<const float4*>(src.x + size_t(r) * k)[i];
  if (!src.delta) return v;
  if (src.delta_weights) {
    const float4 d = weighted_load4(src.delta + size_t(r) * src.delta_count * k, src.delta_weights + size_t(r) * src.delta_count,
                                    src.delta_count, k, i, true);
    v.x += d.x, v.y += d.y, v.z += d.z, v.w += d.w;
    return v;
  }
  const float4 d = reinterpret_cast<const float4*>(src.delta + size_t(r) * k)[i];
  const float4 g = gain4(reinterpret_cast<const float4*>(src.delta_w)[i], src.one_plus);
  v.x += d.x * inv_delta * g.x;
  v.y += d.y * inv_delta * g.y;
  v.z += d.z * inv_delta * g.z;
  v.w += d.w * inv_delta * g.w;
  return v;
}

// rows (at most kMaxRows) rows of k values (a multiple of 4) into out (row r at out + r *
// stride), by every thread of a block of kThreads (barriers), the way add_norm_kernel computes
// them but for its summation order. The passes over a row after the first read it from L1.
// Blocks that normalise the same rows get the same bits.
template <int kMaxRows, int kThreads>
__device__ __forceinline__ void block_normed_rows(const NormSource& src, int rows, int k, __nv_bfloat16* out, int stride) {
  const int quads = k / 4;
  float inv_delta[kMaxRows] = {}, inv[kMaxRows];
  if (src.delta && !src.delta_weights) {
    float ss[kMaxRows] = {};
#pragma unroll
    for (int r = 0; r < kMaxRows; ++r) {
      if (r >= rows) break;
      const float4* d = reinterpret_cast<const float4*>(src.delta + size_t(r) * k);
      for (int i = int(threadIdx.x); i < quads; i += kThreads) ss[r] += sum_squares(d[i]);
    }
    block_inverse_rms<kMaxRows, kThreads>(ss, k, src.eps, inv_delta);
  }
  float ss[kMaxRows] = {};
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    if (r >= rows) break;
    for (int i = int(threadIdx.x); i < quads; i += kThreads) ss[r] += sum_squares(updated_quad(src, r, i, k, inv_delta[r]));
  }
  block_inverse_rms<kMaxRows, kThreads>(ss, k, src.eps, inv);
  const bool storing = src.delta && src.store && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0;
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {  // unrolled: inv[r] and inv_delta[r] stay in registers
    if (r >= rows) break;
    const float4* gain = reinterpret_cast<const float4*>(src.w);
    uint2* dst = reinterpret_cast<uint2*>(out + size_t(r) * stride);  // 4 values, one 8-byte store
    for (int i = int(threadIdx.x); i < quads; i += kThreads) {
      const float4 v = updated_quad(src, r, i, k, inv_delta[r]), w = gain4(gain[i], src.one_plus);
      if (storing) reinterpret_cast<float4*>(src.store + size_t(r) * k)[i] = v;
      const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x * inv[r] * w.x, v.y * inv[r] * w.y);
      const __nv_bfloat162 hi = __floats2bfloat162_rn(v.z * inv[r] * w.z, v.w * inv[r] * w.w);
      dst[i] = make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
    }
  }
  __syncthreads();
}

}  // namespace fp4llm::cuda
