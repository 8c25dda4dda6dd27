// Device pieces of the q/k-norm + RoPE + KV-cache write kernel (layer_kernels.cu): one
// rotate-half pair at a position, and one element's store into the cache (BF16 or E4M3).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/warp_reduce.cuh"

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

// One warp's q/k RMSNorm (gains w) and RoPE at `position` of a head of D values, lane l holding
// the pairs (a[j], b[j]) = elements (l + 32j, l + 32j + D/2): the rope kernel's arithmetic, which
// the flash kernel's roped queries (FP4LLM_FLASH_ROPE) share.
template <int D>
__device__ __forceinline__ void warp_norm_rope(float (&a)[D / 64], float (&b)[D / 64], const float* w, float eps,
                                               bool one_plus, int32_t position, const float* inv_freq) {
  constexpr int kPairs = D / 64, kHalf = D / 2;
  const int lane = int(threadIdx.x % 32);
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kPairs; ++j) ss += a[j] * a[j] + b[j] * b[j];
  const float inv = rsqrtf(warp_sum(ss) / float(D) + eps);
#pragma unroll
  for (int j = 0; j < kPairs; ++j) {
    const int i = lane + 32 * j;
    a[j] *= inv * norm_gain(w, i, one_plus);
    b[j] *= inv * norm_gain(w, i + kHalf, one_plus);
    rotate_half(a[j], b[j], position, inv_freq[i]);
  }
}

// FP8 E4M3 as sat(v / scale), or BF16.
__device__ __forceinline__ void store_cache(void* cache, size_t at, float v, float scale, bool fp8) {
  if (fp8)
    static_cast<__nv_fp8_storage_t*>(cache)[at] = __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
  else
    static_cast<__nv_bfloat16*>(cache)[at] = __float2bfloat16_rn(v);
}

}  // namespace fp4llm::cuda
