// Device pieces of the q/k-norm + RoPE + KV-cache write kernel (layer_kernels.cu): one
// rotate-half pair at a position, and one element's store into the cache (BF16 or E4M3).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace fp4llm::cuda {

// cos and sin of pair i's angle at a position (freq = inv_freq[i]).
__device__ __forceinline__ float2 rope_cos_sin(int32_t position, float freq) {
  const float angle = float(position) * freq;
  return make_float2(cosf(angle), sinf(angle));
}

// Elements i and i + head_dim / 2 of a head, rotated by the angle whose cos and sin are c and s.
__device__ __forceinline__ void rotate_pair(float& a, float& b, float c, float s) {
  const float ra = a * c - b * s, rb = b * c + a * s;
  a = ra;
  b = rb;
}

// The same at a position (freq = inv_freq[i]).
__device__ __forceinline__ void rotate_half(float& a, float& b, int32_t position, float freq) {
  const float2 cs = rope_cos_sin(position, freq);
  rotate_pair(a, b, cs.x, cs.y);
}

// FP8 E4M3 as sat(v / scale), or BF16.
__device__ __forceinline__ void store_cache(void* cache, size_t at, float v, float scale, bool fp8) {
  if (fp8)
    static_cast<__nv_fp8_storage_t*>(cache)[at] = __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
  else
    static_cast<__nv_bfloat16*>(cache)[at] = __float2bfloat16_rn(v);
}

}  // namespace fp4llm::cuda
