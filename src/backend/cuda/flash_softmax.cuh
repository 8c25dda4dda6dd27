// The online-softmax step both flash prefill kernels take per key tile (flash_prefill.cu,
// flash_prefill_pipelined.cuh), for a thread's two query rows of an m16n8k16 C fragment: scores
// masked (causal, sliding window, keys past a row's position) and scaled, the running max and
// sum updated in float32, the output accumulators rescaled, and P packed as PV's A operand.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/mma_16bit.cuh"

namespace fp4llm::cuda {

namespace {

// exp2 on the special-function unit (what __expf runs after its multiply by log2(e)).
__device__ __forceinline__ float ex2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The factor of raw Q.K scores in the log2 domain the softmax works in: softmax scale x the K
// cache's scale x log2(e).
__device__ __forceinline__ float score_scale_log2(float scale, float k_scale) {
  return scale * k_scale * 1.4426950408889634f;
}

// Whether some key of the tile [k0, k0 + kKeys) is masked for some query row at positions
// [pos0, last]: past the first row's position (causal), or at or before last - window (sliding
// window). Tiles wholly inside both bounds, all but the diagonal ones of a long prompt, skip the
// per-element mask: at 64 keys that is about 6 instructions of 64 per thread, as many as the
// softmax itself. Rows past the tile's count see keys below their own position either way.
__device__ __forceinline__ bool tile_needs_mask(int k0, int keys, int pos0, int last, int window) {
  return k0 + keys - 1 > pos0 || (window > 0 && k0 <= last - window);
}

// s: kKeys / 8 n-tiles of raw scores (Q.K, not yet scaled) for keys k0 + 8n + 2t + (j & 1), rows
// pos_r[j / 2]; m, l: the rows' running max (raw units) and sum; o: their output accumulators;
// pa: P in 16-bit (FP16 with kF16). scale_log2 = softmax scale x log2(e): exp((s - m) x scale) is
// one FFMA and one ex2 per score. kMask applies the causal and window mask per element.
template <int kKeys, int D, bool kF16, bool kMask>
__device__ __forceinline__ void softmax_tile(float (&s)[kKeys / 8][4], int k0, int t, const int (&pos_r)[2], int window,
                                             float scale_log2, float (&m)[2], float (&l)[2], float (&o)[D / 8][4],
                                             uint32_t (&pa)[kKeys / 16][4]) {
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if constexpr (kMask) {
        const int key = k0 + n * 8 + 2 * t + (j & 1), p = pos_r[j / 2];
        if (!(key <= p && (window == 0 || key > p - window))) s[n][j] = -INFINITY;
      }
      mx[j / 2] = fmaxf(mx[j / 2], s[n][j]);
    }
  float alpha[2], base[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    const float m_new = fmaxf(m[r], mx[r]);
    // Rounded products (no FMA contraction), so that an unchanged maximum gives alpha = 1 exactly.
    base[r] = m_new == -INFINITY ? 0.0f : __fmul_rn(m_new, scale_log2);  // a row with no key yet stays empty
    alpha[r] = ex2_approx(__fmul_rn(m[r], scale_log2) - base[r]);
    m[r] = m_new;
  }
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) {  // P's k-tile n / 2: a0/a1 from even n-tiles, a2/a3 from odd
    float pr[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      pr[j] = ex2_approx(fmaf(s[n][j], scale_log2, -base[j / 2]));
      sum[j / 2] += pr[j];
    }
    pa[n / 2][(n % 2) * 2] = pack2<kF16>(pr[0], pr[1]);
    pa[n / 2][(n % 2) * 2 + 1] = pack2<kF16>(pr[2], pr[3]);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 1);
    sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 2);
    l[r] = l[r] * alpha[r] + sum[r];
  }
  // Past the first key tiles a row's running maximum rarely moves, and an unchanged maximum gives
  // alpha exactly 1: where no row of the warp has a new one, the D / 2 multiplies per thread
  // would change nothing (as in the decode kernel, mma_decode_attention.cu).
  if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f))
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn)
      o[dn][0] *= alpha[0], o[dn][1] *= alpha[0], o[dn][2] *= alpha[1], o[dn][3] *= alpha[1];
}

// The tile's softmax with the per-element mask only where tile_needs_mask says so (or on every
// tile with FP4LLM_FLASH_MASK_EVERY_TILE=1, the earlier kernels' way, for A/B).
template <int kKeys, int D, bool kF16>
__device__ __forceinline__ void softmax_tile(bool mask, float (&s)[kKeys / 8][4], int k0, int t, const int (&pos_r)[2],
                                             int window, float scale_log2, float (&m)[2], float (&l)[2],
                                             float (&o)[D / 8][4], uint32_t (&pa)[kKeys / 16][4]) {
  if (mask)
    softmax_tile<kKeys, D, kF16, true>(s, k0, t, pos_r, window, scale_log2, m, l, o, pa);
  else
    softmax_tile<kKeys, D, kF16, false>(s, k0, t, pos_r, window, scale_log2, m, l, o, pa);
}

// The thread's two rows (row0, row0 + 8 of the tile, those below `count`) normalised by their
// sums, times the V scale, into out [token][heads][D] as BF16.
template <int D>
__device__ __forceinline__ void store_rows(const float (&o)[D / 8][4], const float (&l)[2], int row0, int t, int first_token,
                                           int count, int64_t heads, int head, float v_scale, __nv_bfloat16* out) {
#pragma unroll
  for (int dn = 0; dn < D / 8; ++dn)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int r = row0 + (j / 2) * 8;
      if (r >= count) continue;
      const int d = dn * 8 + 2 * t + (j & 1);
      out[(size_t(first_token + r) * heads + head) * D + d] = __float2bfloat16_rn(o[dn][j] / l[j / 2] * v_scale);
    }
}

}  // namespace

}  // namespace fp4llm::cuda
