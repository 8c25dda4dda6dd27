// The end of a decode-attention block shared by both decode kernels (paged_attention.cu on CUDA
// cores, mma_decode_attention.cu on tensor cores): a block that saw a token's whole key range
// writes the result; otherwise it stores its split's partial result, and the last split of the
// (token, kv head) to finish merges all of them in split order, so no second kernel runs.
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/paged_attention.hpp"
#include "backend/cuda/warp_reduce.cuh"

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

// The former merges, kept to compare (FP4LLM_ATTN_SPLIT_MERGE=chain, =two_pass): each thread
// takes one output element through every split. chain: one pass with a running maximum, each
// split's terms waiting for the previous split's rescale. two_pass: the maximum first, then the
// sums. Each element's pass over the splits is a chain of L2 round trips of its own, in the last
// block to finish: same call (H100, 2026-12-06, 32k FP8 attention a step), chain 1,547 us,
// two_pass 1,774, by rows 1,241 (BF16: chain 2,600, by rows 1,979).
template <int D>
__device__ void merge_splits_per_element(const AttentionParams& p, const AttentionWorkspace& ws,
                                         __nv_bfloat16* out, int token, int kv_head, int group, int active) {
  for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
    const size_t slots = (size_t(token) * p.heads + kv_head * group + i / D) * p.splits;
    const float* ml = ws.partial_ml + slots * 2;
    const float* o = ws.partial_out + slots * D + i % D;
    float mx = -INFINITY, sum = 0.0f, acc = 0.0f;
    if (p.split_merge == SplitMerge::kTwoPass) {
#pragma unroll 8
      for (int s = 0; s < active; ++s) mx = fmaxf(mx, __ldcg(ml + s * 2));
#pragma unroll 8
      for (int s = 0; s < active; ++s) {
        const float ms = __ldcg(ml + s * 2), ls = __ldcg(ml + s * 2 + 1), os = __ldcg(o + size_t(s) * D);
        if (ms == -INFINITY) continue;  // a part without keys
        const float f = __expf(ms - mx);
        sum += ls * f;
        acc += os * f;
      }
    } else {
#pragma unroll 8
      for (int s = 0; s < active; ++s) {
        const float ms = __ldcg(ml + s * 2), ls = __ldcg(ml + s * 2 + 1), os = __ldcg(o + size_t(s) * D);
        if (ms == -INFINITY) continue;
        const float m_new = fmaxf(mx, ms), rescale = __expf(mx - m_new), f = __expf(ms - m_new);
        sum = sum * rescale + ls * f;
        acc = acc * rescale + os * f;
        mx = m_new;
      }
    }
    out[(size_t(token) * p.heads + kv_head * group) * D + i] = __float2bfloat16_rn(acc / sum * p.v_scale);
  }
}

// A head row's maximum over its splits and the factor that turns its sum of weighted partials into
// the output (v_scale over the softmax total), by one warp: lane j holds splits j, j + 32, ...;
// up to 128 splits are loaded once, in one round trip.
__device__ __forceinline__ float2 split_row_scale(const AttentionParams& p, const float2* ml, int active) {
  const int lane = threadIdx.x % 32;
  float2 held[4];
#pragma unroll
  for (int k = 0; k < 4; ++k)
    held[k] = lane + 32 * k < active ? __ldcg(ml + lane + 32 * k) : make_float2(-INFINITY, 0.0f);
  float mx = fmaxf(fmaxf(held[0].x, held[1].x), fmaxf(held[2].x, held[3].x));
  for (int s = lane + 128; s < active; s += 32) mx = fmaxf(mx, __ldcg(ml + s).x);
  mx = warp_max(mx);
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < 4; ++k)
    if (held[k].x != -INFINITY) sum += held[k].y * __expf(held[k].x - mx);
  for (int s = lane + 128; s < active; s += 32) {
    const float2 v = __ldcg(ml + s);
    if (v.x != -INFINITY) sum += v.y * __expf(v.x - mx);
  }
  return make_float2(mx, p.v_scale / warp_sum(sum));
}

// The default merge: each head row's maximum and total first (split_row_scale, a warp a row), then
// each thread sums 4 adjacent elements of a row over the splits with 16-byte loads, whose
// exponentials need only the row's maximum, so that the loads of 16 splits are in flight at once.
// The merging block is the last of its (token, kv head) to finish, so its latency is the step's:
// about 2 + splits / 16 L2 round trips instead of the per-element merges' elements / threads x
// splits / 8 (x 2 for two_pass).
template <int D>
__device__ void merge_splits_by_rows(const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                                     int token, int kv_head, int group, int active) {
  __shared__ float2 row_scale[kMaxSplitMergeRows];
  const size_t first_slot = (size_t(token) * p.heads + kv_head * group) * p.splits;
  for (int r = int(threadIdx.x) / 32; r < group; r += int(blockDim.x) / 32) {
    const float2 s = split_row_scale(p, reinterpret_cast<const float2*>(ws.partial_ml) + first_slot + r * p.splits, active);
    if (threadIdx.x % 32 == 0) row_scale[r] = s;
  }
  __syncthreads();
  constexpr int kQuads = D / 4;
  for (int i = threadIdx.x; i < group * kQuads; i += blockDim.x) {
    const int r = i / kQuads, d = i % kQuads * 4;
    const size_t slots = first_slot + size_t(r) * p.splits;
    const float* ml = ws.partial_ml + slots * 2;
    const float4* o = reinterpret_cast<const float4*>(ws.partial_out + slots * D + d);
    const float mx = row_scale[r].x;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 16
    for (int s = 0; s < active; ++s) {
      const float ms = __ldcg(ml + s * 2);
      const float4 os = __ldcg(o + s * kQuads);
      const float f = ms == -INFINITY ? 0.0f : __expf(ms - mx);  // a part without keys adds nothing
      if (f != 0.0f) acc.x += os.x * f, acc.y += os.y * f, acc.z += os.z * f, acc.w += os.w * f;
    }
    const float scale = row_scale[r].y;
    __nv_bfloat162* dst = reinterpret_cast<__nv_bfloat162*>(out + (size_t(token) * p.heads + kv_head * group + r) * D + d);
    dst[0] = __floats2bfloat162_rn(acc.x * scale, acc.y * scale);
    dst[1] = __floats2bfloat162_rn(acc.z * scale, acc.w * scale);
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
  if (p.split_merge == SplitMerge::kByRows && group <= kMaxSplitMergeRows)
    merge_splits_by_rows<D>(p, ws, out, token, kv_head, group, active);
  else
    merge_splits_per_element<D>(p, ws, out, token, kv_head, group, active);
  if (threadIdx.x == 0) *counter = 0;
}

}  // namespace fp4llm::cuda
