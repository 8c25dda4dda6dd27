// The pieces of an RMSNorm that every kernel taking one shares (layer_kernels.cu's norm and RoPE
// kernels, the GEMV's norm prologue): the gain, Qwen3's w or Gemma3's 1 + w, and a float4's sum
// of squares.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fp4llm::cuda {

__device__ __forceinline__ float norm_gain(const float* w, int64_t i, bool one_plus) {
  return one_plus ? 1.0f + w[i] : w[i];
}

__device__ __forceinline__ float4 gain4(float4 w, bool one_plus) {
  return one_plus ? make_float4(1 + w.x, 1 + w.y, 1 + w.z, 1 + w.w) : w;
}

__device__ __forceinline__ float sum_squares(float4 v) { return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w; }

}  // namespace fp4llm::cuda
