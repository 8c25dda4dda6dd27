// q/k RMSNorm, RoPE and the KV-cache write, taken at the end of the qkv GEMV for decode batches
// of up to 16 rows instead of in their own kernel (3.4 us per layer at batch 1 on the H200,
// Nsight Compute, plus its launch; docs/PERFORMANCE.md). A head is ready once all its tiles are
// written: each block adds the tiles it wrote to its heads' counters, and the block that
// completes a head finishes it, a warp per (head, token), with the rope kernel's arithmetic
// (layer_kernels.cu; the sum of squares is taken in another order).
#pragma once

#include "backend/cuda/head_tiles.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope_cache.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace fp4llm::cuda {

namespace {

struct RopeArgs;
__device__ __forceinline__ void finish_with_rope(const GemvArgs& p, const RopeArgs& r);

struct RopeArgs {
  static constexpr bool kActive = true;
  RopeCacheParams params;
  RopeCacheIo io;
  unsigned int* head_done;  // [heads + 2 kv_heads]: tiles written per head, zero between launches
  __device__ void finish(const GemvArgs& p) const { finish_with_rope(p, *this); }
};

constexpr int kMaxRopePairs = 8;  // head_dim up to 512: rotate-half pairs per lane

// One warp, head `head` of token t: lane l holds the pairs (i, i + D/2) for i = l, l + 32, ...
__device__ __forceinline__ void rope_head(const RopeArgs& r, const float* qkv_row, int head, int t, int lane) {
  const RopeCacheParams& p = r.params;
  const int D = int(p.head_dim), half = D / 2, pairs = D / 64, heads = int(p.heads), kv = int(p.kv_heads);
  const bool is_q = head < heads, is_k = !is_q && head < heads + kv;
  const float* src = qkv_row + size_t(head) * D;
  float a[kMaxRopePairs], b[kMaxRopePairs];
  float ss = 0;
#pragma unroll
  for (int j = 0; j < kMaxRopePairs; ++j) {
    if (j >= pairs) break;
    a[j] = __ldcg(src + lane + 32 * j);  // past L1: other blocks wrote the head's tiles
    b[j] = __ldcg(src + lane + 32 * j + half);
    ss += a[j] * a[j] + b[j] * b[j];
  }
  if (is_q || is_k) {  // uniform over the warp
    const float inv = rsqrtf(warp_sum(ss) / float(D) + p.eps);
    const float* w = is_q ? r.io.q_norm : r.io.k_norm;
    const int32_t position = r.io.positions[t];
#pragma unroll
    for (int j = 0; j < kMaxRopePairs; ++j) {
      if (j >= pairs) break;
      const int i = lane + 32 * j;
      a[j] *= inv * norm_gain(w, i, p.one_plus);
      b[j] *= inv * norm_gain(w, i + half, p.one_plus);
      rotate_half(a[j], b[j], position, r.io.inv_freq[i]);
    }
  }
  if (is_q) {
    float* dst = r.io.q + (size_t(t) * heads + head) * D;
#pragma unroll
    for (int j = 0; j < kMaxRopePairs; ++j) {
      if (j >= pairs) break;
      dst[lane + 32 * j] = a[j];
      dst[lane + 32 * j + half] = b[j];
    }
    return;
  }
  const int kv_head = is_k ? head - heads : head - heads - kv;
  const size_t at = size_t((r.io.slots[t] * kv + kv_head) * D);
  void* cache = is_k ? r.io.k_cache : r.io.v_cache;
  const float scale = is_k ? p.k_scale : p.v_scale;
#pragma unroll
  for (int j = 0; j < kMaxRopePairs; ++j) {
    if (j >= pairs) break;
    store_cache(cache, at + lane + 32 * j, a[j], scale, p.fp8);
    store_cache(cache, at + lane + 32 * j + half, b[j], scale, p.fp8);
  }
}

__device__ __forceinline__ void finish_with_rope(const GemvArgs& p, const RopeArgs& r) {
  constexpr int kMaxHeads = 4;  // one block's tiles (at most 8) touch at most 2 heads of >= 4 tiles
  __shared__ int done[kMaxHeads];
  __shared__ int count;
  __threadfence();  // this thread's part of qkv is visible before the counters say so
  __syncthreads();
  if (threadIdx.x == 0) {
    count = 0;
    const BlockHeads b(int(blockIdx.x), kWarps / p.splits, p.row_tiles, int(r.params.head_dim) / 16);
    for (int h = b.first_head(); h < b.end_head() && count < kMaxHeads; ++h) {
      const unsigned mine = unsigned(b.tiles_of(h));
      if (atomicAdd(r.head_done + h, mine) + mine == unsigned(b.per_head)) {
        done[count++] = h;
        r.head_done[h] = 0;  // all of h's tiles are counted: ready for the next launch or graph replay
      }
    }
  }
  __syncthreads();
  if (count == 0) return;
  __threadfence();  // and the other blocks' tiles of these heads are seen here
  const int warp = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
  for (int item = warp; item < count * p.rows; item += kWarps)
    rope_head(r, p.y + size_t(item / count) * p.n, done[item % count], item / count, lane);
}

}  // namespace

}  // namespace fp4llm::cuda
