// The q/k RMSNorm, RoPE and KV-cache write of a decode token (rope_cache_kernel's work,
// layer_kernels.cu) done by the decode attention itself (FP4LLM_ROPE_IN_ATTENTION=1). It applies
// to steps whose tokens are each their sequence's only new token: then no token reads a key that
// another block of the same launch writes. Written against a batch-1 layer's chain of dependent
// kernels: the attention follows the qkv product directly, one kernel and one grid-wide wait fewer
// per layer.
//
// Two forms. The tensor-core kernel (mma_decode_attention.cu) normalises and rotates its query
// group in registers (the lane quarters that hold dims i and i + D/2 of a head swap them with one
// shuffle); the block whose key range ends at the token also computes its kv head's new key and
// value, stores them into the cache for later steps, and keeps them in shared memory for its own
// last cache block, whose global copy it requested before they were stored. The CUDA-core kernel
// (paged_attention.cu) does it in its shared-memory copy of the query group, one warp per head,
// and stores the new key and value before the barrier that precedes its first key load.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/paged_attention.hpp"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope_cache.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace fp4llm::cuda {

// What the block needs besides the attention's own inputs (device pointers).
struct RopeInAttentionArgs {
  const float* qkv = nullptr;       // [tokens][(heads + 2 kv_heads) * head_dim], the raw products
  const int64_t* slots = nullptr;   // [tokens] cache slot of each token's key and value
  const float* q_norm = nullptr;    // [head_dim]
  const float* k_norm = nullptr;    // [head_dim]
  const float* inv_freq = nullptr;  // [head_dim / 2]
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  float eps = 1e-6f;
  bool one_plus = false;  // Gemma3's (1 + w) gains
};

// The kernels' arguments from the rope kernel's (io.q is not used), after checking that both
// describe the same heads and cache.
inline RopeInAttentionArgs rope_in_attention_args(const float* qkv, const RopeCacheParams& rp, const RopeCacheIo& io,
                                                  const AttentionParams& p) {
  if (rp.heads != p.heads || rp.kv_heads != p.kv_heads || rp.head_dim != p.head_dim || rp.fp8 != p.fp8 ||
      rp.head_major_cache != p.head_major_cache ||
      (p.fp8 && (rp.k_scale != p.k_scale || rp.v_scale != p.v_scale)))
    throw_error("RoPE in the decode attention: the rope and attention parameters describe different heads or caches");
  RopeInAttentionArgs r;
  r.qkv = qkv, r.slots = io.slots, r.q_norm = io.q_norm, r.k_norm = io.k_norm, r.inv_freq = io.inv_freq;
  r.k_cache = io.k_cache, r.v_cache = io.v_cache, r.eps = rp.eps, r.one_plus = rp.one_plus;
  return r;
}

// cos and sin of position * inv_freq[i] for the D/2 rotation pairs, one thread each, as the rope
// kernel computes them (the caller synchronises before reading).
template <int D>
__device__ __forceinline__ void rope_angles(const RopeInAttentionArgs& r, int position, float* cos_s, float* sin_s) {
  const int i = int(threadIdx.x);
  if (i < D / 2) {
    const float2 cs = rope_cos_sin(position, r.inv_freq[i]);
    cos_s[i] = cs.x;
    sin_s[i] = cs.y;
  }
}

// Element d's rotation when `u` holds dim d (normalised) and `partner` dim d +- D/2: the first
// half takes a c - b s, the second b c + a s (rotate_half).
__device__ __forceinline__ float rotated(float u, float partner, bool first_half, float c, float s) {
  return first_half ? u * c - partner * s : u * c + partner * s;
}

// The mma A fragments of the query group (rows g and g + 8, zero past the group) with the K
// permutation of mma_decode_attention.cu (lane quarter t holds dims [t D/4, (t + 1) D/4)), after
// RMSNorm and RoPE. `q` is the group's first head in the raw q|k|v row. Two passes over q: the sum
// of squares first, then the values again (from L1), so that the whole head never sits in registers
// beside the cache blocks already requested. kRows = 1: rows g only (query groups up to 8, whose
// rows g + 8 are all zero); qa[s][1] and qa[s][3] are then left as they are.
template <int D, class Pack, int kRows = 2>
__device__ __forceinline__ void roped_q_fragments(const float* q, const RopeInAttentionArgs& r, int group, float qscale,
                                                  const float* cos_s, const float* sin_s, Pack pack,
                                                  uint32_t (&qa)[D / 16][4]) {
  constexpr int kSteps = D / 16, kQuarter = D / 4;
  const int lane = int(threadIdx.x) % 32, g = lane >> 2, t = lane & 3;
  float inv[2];
#pragma unroll
  for (int row = 0; row < kRows; ++row) {
    const int head = g + 8 * row;
    float ss = 0.0f;
    if (head < group)
#pragma unroll
      for (int s = 0; s < kSteps; ++s)
        ss += sum_squares(*reinterpret_cast<const float4*>(q + head * D + kQuarter * t + 4 * s));
    ss += __shfl_xor_sync(0xffffffffu, ss, 1);
    ss += __shfl_xor_sync(0xffffffffu, ss, 2);
    inv[row] = rsqrtf(ss / float(D) + r.eps);
  }
  const bool first_half = t < 2;
#pragma unroll
  for (int s = 0; s < kSteps; ++s) {
    const int d = kQuarter * t + 4 * s, i = d % (D / 2);
    const float4 gain = gain4(*reinterpret_cast<const float4*>(r.q_norm + d), r.one_plus);
#pragma unroll
    for (int row = 0; row < kRows; ++row) {
      const int head = g + 8 * row;
      const bool ok = head < group;
      const float4 v = ok ? *reinterpret_cast<const float4*>(q + head * D + d) : make_float4(0, 0, 0, 0);
      const float u[4] = {v.x * inv[row] * gain.x, v.y * inv[row] * gain.y, v.z * inv[row] * gain.z,
                          v.w * inv[row] * gain.w};
      float o[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        o[j] = rotated(u[j], __shfl_xor_sync(0xffffffffu, u[j], 2), first_half, cos_s[i + j], sin_s[i + j]) * qscale;
      qa[s][row] = ok ? pack(o[0], o[1]) : 0u;
      qa[s][2 + row] = ok ? pack(o[2], o[3]) : 0u;
    }
  }
}

// One warp normalises and rotates a head of D values from `src` (gains w) and hands each rotated
// pair (i, i + D/2) to put(i, a, b); lane l takes pairs l, l + 32, ... (inlined per call, so shared
// and global sources each get their own loads).
template <int D, class Put>
__device__ __forceinline__ void warp_rope_head(const float* src, const float* w, const RopeInAttentionArgs& r,
                                               const float* cos_s, const float* sin_s, Put put) {
  const int lane = int(threadIdx.x) % 32;
  float ss = 0.0f;
  for (int d = lane; d < D; d += 32) ss += src[d] * src[d];
  const float inv = rsqrtf(warp_sum(ss) / float(D) + r.eps);
  for (int i = lane; i < D / 2; i += 32) {
    float a = src[i] * inv * norm_gain(w, i, r.one_plus), b = src[i + D / 2] * inv * norm_gain(w, i + D / 2, r.one_plus);
    rotate_pair(a, b, cos_s[i], sin_s[i]);
    put(i, a, b);
  }
}

// One warp stores the kv head's new key (normalised and rotated) or value (as it is) into its
// cache slot and, where `mirror` is given, in the cache's encoding into shared memory (D elements).
// `k_row` is the key's raw row; the value's follows kv_heads heads later.
template <int D>
__device__ __forceinline__ void warp_store_new_row(bool key, const RopeInAttentionArgs& r, const AttentionParams& p,
                                                   const float* k_row, size_t cache_at, const float* cos_s,
                                                   const float* sin_s, uint8_t* mirror) {
  const auto put = [&](int d, float v) {
    store_cache(key ? r.k_cache : r.v_cache, cache_at + d, v, key ? p.k_scale : p.v_scale, p.fp8);
    if (mirror) store_cache(mirror, d, v, key ? p.k_scale : p.v_scale, p.fp8);
  };
  if (key) {
    warp_rope_head<D>(k_row, r.k_norm, r, cos_s, sin_s, [&](int i, float a, float b) { put(i, a), put(i + D / 2, b); });
  } else {
    const float* v_row = k_row + size_t(p.kv_heads) * D;
    for (int d = int(threadIdx.x) % 32; d < D; d += 32) put(d, v_row[d]);
  }
}

// The CUDA-core kernel's form (paged_attention.cu), whose query group lives in shared memory: the
// group's raw q rows into q_s, then one warp per unit (each q head, and in the writer block the
// key and the value) normalises and rotates it in place, or into the cache. The cache rows are
// stored before the block's first key load, which follows a barrier: the block reads them back
// from the cache like any other key. The caller synchronises after this.
template <int D>
__device__ __forceinline__ void rope_group_in_shared(const RopeInAttentionArgs& r, const AttentionParams& p, int tok,
                                                     int kv_head, int pos, bool writer, float* q_s, float* cos_s,
                                                     float* sin_s) {
  const int group = int(p.heads / p.kv_heads), warp = int(threadIdx.x) / 32;
  const float* row = r.qkv + size_t(tok) * size_t(p.heads + 2 * p.kv_heads) * D;
  for (int i = int(threadIdx.x); i < group * D; i += int(blockDim.x)) q_s[i] = row[size_t(kv_head) * group * D + i];
  rope_angles<D>(r, pos, cos_s, sin_s);
  __syncthreads();
  const size_t cache_at = writer ? size_t(cache_row_offset(r.slots[tok], kv_head, p.kv_heads, D, p.head_major_cache)) : 0;
  const float* k_row = row + size_t(p.heads + kv_head) * D;
  const int units = group + (writer ? 2 : 0);
  for (int u = warp; u < units; u += int(blockDim.x) / 32) {
    if (u >= group) {  // the key, then the value
      warp_store_new_row<D>(u == group, r, p, k_row, cache_at, cos_s, sin_s, nullptr);
    } else {  // a query head: in place (each pair is read and written by one lane)
      float* head = q_s + u * D;
      warp_rope_head<D>(head, r.q_norm, r, cos_s, sin_s, [&](int i, float a, float b) { head[i] = a, head[i + D / 2] = b; });
    }
  }
}

}  // namespace fp4llm::cuda
