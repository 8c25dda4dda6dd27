// The pieces of an RMSNorm that every kernel taking one shares (layer_kernels.cu's norm and RoPE
// kernels, the GEMV's and the MoE router's norm prologue): the gain, Qwen3's w or Gemma3's 1 + w,
// a float4's sum of squares, and a block normalising a few rows into shared memory.
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

// Rows to normalise: rmsnorm(x row) * gain(w) in BF16.
struct NormSource {
  const float* x;  // [rows][k] float32 (the residual stream)
  const float* w;  // [k]
  float eps;
  bool one_plus;
};

// rows (at most kMaxRows) rows of k values (a multiple of 4) into out (row r at out + r *
// stride), by every thread of a block of kThreads (barriers), the way add_norm_kernel computes
// them but for its summation order. Two passes over each row, the second from L1. Blocks that
// normalise the same rows get the same bits.
template <int kMaxRows, int kThreads>
__device__ __forceinline__ void block_normed_rows(const NormSource& src, int rows, int k, __nv_bfloat16* out, int stride) {
  constexpr int kWarpsHere = kThreads / 32;
  __shared__ float warp_part[kWarpsHere][kMaxRows];
  __shared__ float inv[kMaxRows];
  const int quads = k / 4, lane = int(threadIdx.x & 31), warp = int(threadIdx.x >> 5);
  float ss[kMaxRows] = {};
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    if (r >= rows) break;
    const float4* row = reinterpret_cast<const float4*>(src.x + size_t(r) * k);
    for (int i = int(threadIdx.x); i < quads; i += kThreads) ss[r] += sum_squares(row[i]);
  }
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
      if (lane == 0) inv[r] = rsqrtf(total / float(k) + src.eps);
    }
  }
  __syncthreads();
  for (int r = 0; r < rows; ++r) {
    const float4* row = reinterpret_cast<const float4*>(src.x + size_t(r) * k);
    const float4* gain = reinterpret_cast<const float4*>(src.w);
    uint2* dst = reinterpret_cast<uint2*>(out + size_t(r) * stride);  // 4 values, one 8-byte store
    for (int i = int(threadIdx.x); i < quads; i += kThreads) {
      const float4 v = row[i], w = gain4(gain[i], src.one_plus);
      const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x * inv[r] * w.x, v.y * inv[r] * w.y);
      const __nv_bfloat162 hi = __floats2bfloat162_rn(v.z * inv[r] * w.z, v.w * inv[r] * w.w);
      dst[i] = make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
    }
  }
  __syncthreads();
}

}  // namespace fp4llm::cuda
