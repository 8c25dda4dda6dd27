// Reading K/V elements of the paged cache (FP8 E4M3 or BF16) into float registers with the widest
// aligned loads: shared by the decode and the prefill attention kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstddef>
#include <cstdint>

namespace fp4llm::cuda {

// What every attention kernel reads: the queries, the paged caches, and where each token's keys
// are (its position, its sequence's block-table row).
struct AttentionInputs {
  const float* q;
  const uint8_t* k;
  const uint8_t* v;
  const int32_t* positions;
  const int32_t* token_seq;
  const int32_t* block_tables;
};

inline AttentionInputs attention_inputs(const float* q, const void* k_cache, const void* v_cache,
                                        const int32_t* positions, const int32_t* token_seq,
                                        const int32_t* block_tables) {
  return {q, static_cast<const uint8_t*>(k_cache), static_cast<const uint8_t*>(v_cache), positions, token_seq,
          block_tables};
}

__device__ __forceinline__ float2 fp8x2_to_float2(uint32_t two) {
  return __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xFFFF), __NV_E4M3)));
}

// N consecutive 32-bit words with the widest aligned loads (N * 4 bytes, N = 1, 2 or 4k).
template <int N>
__device__ __forceinline__ void load_words(const void* src, uint32_t (&w)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N; i += 4) {
      const uint4 v = reinterpret_cast<const uint4*>(src)[i / 4];
      w[i] = v.x, w[i + 1] = v.y, w[i + 2] = v.z, w[i + 3] = v.w;
    }
  } else if constexpr (N == 2) {
    const uint2 v = *reinterpret_cast<const uint2*>(src);
    w[0] = v.x, w[1] = v.y;
  } else {
    w[0] = *reinterpret_cast<const uint32_t*>(src);
  }
}

// N cache elements already loaded as 32-bit words (N / 4 for FP8, N / 2 for BF16) as floats.
template <int N, bool kFp8>
__device__ __forceinline__ void decode_cache(const uint32_t* w, float (&out)[N]) {
  if constexpr (kFp8) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
      const float2 lo = fp8x2_to_float2(w[i]), hi = fp8x2_to_float2(w[i] >> 16);
      out[4 * i] = lo.x, out[4 * i + 1] = lo.y, out[4 * i + 2] = hi.x, out[4 * i + 3] = hi.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  }
}

// N consecutive cache elements (N = 2 or a multiple of 4) as floats, unscaled.
template <int N, bool kFp8>
__device__ __forceinline__ void load_cache(const uint8_t* base, size_t element, float (&out)[N]) {
  if constexpr (kFp8 && N == 2) {
    const float2 f = fp8x2_to_float2(*reinterpret_cast<const uint16_t*>(base + element));
    out[0] = f.x, out[1] = f.y;
  } else {
    constexpr int kWords = kFp8 ? N / 4 : N / 2;
    uint32_t w[kWords];
    load_words<kWords>(base + element * (kFp8 ? 1 : 2), w);
    decode_cache<N, kFp8>(w, out);
  }
}

}  // namespace fp4llm::cuda
