// Device pieces of the q/k-norm + RoPE + KV-cache write kernel (layer_kernels.cu): one
// rotate-half pair at a position, and one element's store into the cache (BF16 or E4M3).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace fp4llm::cuda {

// Elements i and i + head_dim / 2 of a head, rotated by position * freq (freq = inv_freq[i]).
__device__ __forceinline__ void rotate_half(float& a, float& b, int32_t position, float freq) {
  const float angle = float(position) * freq;
  const float c = cosf(angle), s = sinf(angle);
  const float ra = a * c - b * s, rb = b * c + a * s;
  a = ra;
  b = rb;
}

// FP8 E4M3 as sat(v / scale), or BF16.
__device__ __forceinline__ void store_cache(void* cache, size_t at, float v, float scale, bool fp8) {
  if (fp8)
    static_cast<__nv_fp8_storage_t*>(cache)[at] = __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
  else
    static_cast<__nv_bfloat16*>(cache)[at] = __float2bfloat16_rn(v);
}

}  // namespace fp4llm::cuda
