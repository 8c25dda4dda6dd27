// The direct GEMV's chunk loop, written against the instruction-issue bound: an earlier loop's
// SASS (sm_90a, 2026-12-05) spent 271 instructions per two chunks, of which 160 were the
// dequantization and MMAs and about 70 address arithmetic and checks: per chunk it reloaded the
// kernel's pointers from the constant bank, recomputed each lane's x address from p.x (the
// compiler rematerializes x_pointers rather than keep them), checked K's bounds before every x
// load and the item's end before every weight load, and copied the next group's registers into
// the current ones. Here the steady state takes two register groups per iteration in turn (no
// copies), advances running pointers (the loads use immediate offsets), and runs unchecked over
// the chunks before K's ragged last chunk (only the reload that may pass the item's end is
// guarded); the tail, at most one group and K's ragged chunk, checks. Measured on the H200
// (2026-12-05, same-call A/B, Qwen3-8B): 359.1 against 320.0 tok/s at batch 1, 4,649 against
// 4,297 at 16 (docs/PERFORMANCE.md).
#pragma once

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/gemv_norm_prologue.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/streaming_load.cuh"

namespace fp4llm::cuda {

namespace {

// One register group: kChunks chunks' weights (one 16-byte slot per lane) and block scales.
template <int kChunks>
struct ChunkGroup {
  uint4 w[kChunks];
  uint32_t s[kChunks];

  // Chunks [0, kChunks) from w and s (each chunk 32 slots on), all present.
  __device__ __forceinline__ void load(const uint4* w0, const uint16_t* s0) {
#pragma unroll
    for (int u = 0; u < kChunks; ++u) w[u] = load_streaming(w0 + u * 32), s[u] = load_streaming(s0 + u * 32);
  }
  // The same for the first `count` of them.
  __device__ __forceinline__ void load_first(const uint4* w0, const uint16_t* s0, int count) {
#pragma unroll
    for (int u = 0; u < kChunks; ++u)
      if (u < count) w[u] = load_streaming(w0 + u * 32), s[u] = load_streaming(s0 + u * 32);
  }
  // Its chunks against x at x[nt] (this lane's columns of the group's first chunk), K inside.
  template <int NT, bool kShared>
  __device__ __forceinline__ void multiply(float (&acc)[NT][4], const uint4* const (&x)[NT], int live) const {
#pragma unroll
    for (int u = 0; u < kChunks; ++u) chunk_mma<NT>(acc, w[u], s[u], x_unchecked<NT, kShared>(x, u, live), live);
  }
};

template <int NT, int kChunks>
__device__ __forceinline__ void advance(const uint4* (&x)[NT]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) x[nt] += kChunks * 8;
}

// A work item's n chunks from wl, sl (this lane's slots of its first chunk) into acc. Plain
// products wait for x's producer after the first weight loads (dependent_launch.cuh). (Asking
// L2 for the item's whole range first was measured 5% slower at batch 1, docs/PERFORMANCE.md.)
// kNormIn: x is the block's normalised rows in shared memory at xs, which it computes first
// (gemv_norm_prologue.cuh).
template <int NT, bool kGrouped, bool kNormIn = false, bool kSkipPadded = false>
__device__ __forceinline__ void lean_item(const GemvArgs& p, const Slice& s, const WorkItem& item, const uint4* wl,
                                          const uint16_t* sl, float (&acc)[NT][4], __nv_bfloat16* xs = nullptr) {
  constexpr int G = kGroup;
  const int n = item.end - item.begin;
  ChunkGroup<G> a, b;
  a.load_first(wl, sl, n);
  if constexpr (!kGrouped) {
    wait_for_producer();  // weights are in flight; x is the producer's output
    if (p.trigger_after_wait) let_dependents_start();
  }
  const uint4* xq[NT];  // this lane's x of chunk c
  if constexpr (kNormIn) {
    normed_rows_to_shared(p, xs);
    normed_x_pointers<NT>(p, xs, item.g, item.t, item.begin, xq);
  } else {
    x_pointers<NT, kGrouped>(p, s, item.g, item.t, item.begin, xq);
  }
  // Chunks before K's ragged last chunk need no bounds check on x.
  const int unchecked = max(0, min(n, p.k / 64 - item.begin));
  const int live_groups = live_token_groups<NT, kSkipPadded>(s.rows);
  const uint4* wq = wl + G * 32;  // chunk c + G
  const uint16_t* sq = sl + G * 32;
  int c = 0;  // group a holds chunks [c, c + G)
  for (; c + 2 * G <= unchecked; c += 2 * G) {
    b.load(wq, sq);
    a.template multiply<NT, kNormIn>(acc, xq, live_groups);
    advance<NT, G>(xq);
    a.load_first(wq + G * 32, sq + G * 32, n - c - 2 * G);  // the item may end here
    b.template multiply<NT, kNormIn>(acc, xq, live_groups);
    advance<NT, G>(xq);
    wq += 2 * G * 32;
    sq += 2 * G * 32;
  }
  // The tail: checked loads and x (x chunk c + u is xq's chunk c + u - from).
  const int from = c;
  for (; c < n; c += G) {
    b.load_first(wl + (c + G) * 32, sl + (c + G) * 32, n - c - G);
#pragma unroll
    for (int u = 0; u < G; ++u) {
      if (c + u >= n) break;
      item_chunk_mma<NT, kNormIn>(acc, a.w[u], a.s[u], xq, c + u - from, item.begin + from, p.k, item.t, live_groups);
    }
    a = b;
  }
}

}  // namespace

}  // namespace fp4llm::cuda
