// The end of a decode-attention block shared by both decode kernels (paged_attention.cu on CUDA
// cores, mma_decode_attention.cu on tensor cores): a block that saw a token's whole key range
// writes the result; otherwise it stores its split's partial result, and the last split of the
// (token, kv head) to finish merges all of them in split order, so no second kernel runs.
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/paged_attention.hpp"

namespace fp4llm::cuda {

// The keys of token position `pos` (its sliding window, if any) this block attends to: all of
// them without splits; else split `split`'s share, at least `min_keys` and a multiple of 32.
// Each token splits its own range, so a launch does not depend on context lengths (one CUDA
// graph serves every decode step of a batch size). `active`: the splits that hold keys; a block
// past them has nothing to do (returns false).
struct KeyRange {
  int begin, end, active;
};
__device__ __forceinline__ bool split_key_range(const AttentionParams& p, int pos, int split, int min_keys,
                                                KeyRange& r) {
  const int first = p.window > 0 ? max(0, pos - int(p.window) + 1) : 0;
  r = {first, pos + 1, 1};
  if (p.splits == 1) return true;
  const int per_split = max(min_keys, ((r.end - first + int(p.splits) - 1) / int(p.splits) + 31) / 32 * 32);
  r.active = (r.end - first + per_split - 1) / per_split;
  if (split >= r.active) return false;
  r.begin = first + split * per_split;
  r.end = min(r.end, r.begin + per_split);
  return true;
}

// Element d of head `head`: acc is the unnormalised output, mx and sum the softmax's running
// maximum and sum over this split's keys.
template <int D>
__device__ __forceinline__ void store_split_result(const AttentionParams& p, const AttentionWorkspace& ws,
                                                   __nv_bfloat16* out, int token, int head, int d, int split,
                                                   int active, float acc, float mx, float sum) {
  if (active == 1) {
    out[(size_t(token) * p.heads + head) * D + d] = __float2bfloat16_rn(acc / sum * p.v_scale);
    return;
  }
  const size_t slot = (size_t(token) * p.heads + head) * p.splits + split;
  ws.partial_out[slot * D + d] = acc;
  if (d == 0) {
    ws.partial_ml[slot * 2] = mx;
    ws.partial_ml[slot * 2 + 1] = sum;
  }
}

// Called by every thread of the block after store_split_result; `group` query heads from
// kv_head * group; `blocks_per_split`: the blocks that each store a part of one split's result
// (a cluster's, mma_decode_attention.cu), all of which arrive. The arrival counter is reset by
// the merging block for the next launch.
template <int D>
__device__ void merge_splits_if_last(const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                                     int token, int kv_head, int group, int active, int blocks_per_split = 1) {
  __shared__ bool last;
  if (active == 1) return;
  __threadfence();
  __syncthreads();
  unsigned* counter = ws.counters + size_t(token) * p.kv_heads + kv_head;
  if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == unsigned(active * blocks_per_split - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  // Two passes over the splits: the head's maximum, then the factors' sums. With one pass and a
  // running maximum each split's terms waited for the previous split's exponential and rescale
  // (about 40 cycles a split at one warp per scheduler): 128 splits cost about 20 us a layer, and
  // more splits measured slower at 32k (docs/PERFORMANCE.md, nineteenth session). Here only the
  // maximum and the two sums chain, each by one instruction a split; the loads and exponentials
  // of several splits are in flight at once.
  for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
    const size_t slots = (size_t(token) * p.heads + kv_head * group + i / D) * p.splits;
    const float* ml = ws.partial_ml + slots * 2;
    const float* o = ws.partial_out + slots * D + i % D;
    float mx = -INFINITY;
#pragma unroll 8
    for (int s = 0; s < active; ++s) mx = fmaxf(mx, __ldcg(ml + s * 2));
    float sum = 0.0f, acc = 0.0f;
#pragma unroll 8
    for (int s = 0; s < active; ++s) {
      const float ms = __ldcg(ml + s * 2), ls = __ldcg(ml + s * 2 + 1), os = __ldcg(o + size_t(s) * D);
      if (ms == -INFINITY) continue;  // a part without keys
      const float f = __expf(ms - mx);
      sum += ls * f;
      acc += os * f;
    }
    out[(size_t(token) * p.heads + kv_head * group) * D + i] = __float2bfloat16_rn(acc / sum * p.v_scale);
  }
  if (threadIdx.x == 0) *counter = 0;
}

}  // namespace fp4llm::cuda
