// Device pieces both decode GEMV kernels share (nvfp4_gemv_ring.cuh, nvfp4_gemv_direct.cuh): the
// kernel arguments, one tile-chunk's dequantization into MMA A fragments (nvfp4_tiles.hpp gives
// the layout), the x fragments, the MMAs, and the epilogue that writes a tile. Only
// nvfp4_linear.cu includes these headers: the pieces live in its unnamed namespace.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <cstring>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/e2m1_pairs.hpp"
#include "backend/cuda/mma_bf16.cuh"
#include "backend/cuda/moe_routing.hpp"
#include "backend/cuda/wgmma_x_layout.cuh"

namespace fp4llm::cuda {

namespace {

constexpr int kWarps = 8;   // warps per block: kWarps / splits tiles, each split over `splits` warps
// FP4LLM_GEMV_BLOCK_WARPS=16: plain products of one token group whose tiles fit in one wave of
// such blocks take one tile per block of kWideWarps warps, K split 16 ways (nvfp4_linear.cu).
constexpr int kWideWarps = 16;

// The direct kernel's register group: chunks requested ahead of the arithmetic (2 measured best
// on the H200, docs/PERFORMANCE.md fifth round).
#ifndef FP4LLM_GEMV_GROUP
#define FP4LLM_GEMV_GROUP 2
#endif
constexpr int kGroup = FP4LLM_GEMV_GROUP;

// kAddNorm: kAdd, and the next RMSNorm's input for a product that takes it scaled
// (FP4LLM_NORM_DEFERRED, gemv_deferred_norm.cuh).
enum Epilogue : int { kStore, kAdd, kSilu, kGelu, kAddNorm };

struct GemvArgs {
  const uint4* packed;
  const uint16_t* scales;
  const float* tile_scales;
  const __nv_bfloat16* x;
  int rows, n, k, k_chunks, row_tiles, chunks_per_split, splits;
  Epilogue epilogue;
  float* y;             // kStore, kAdd: [rows][n]
  __nv_bfloat16* act;   // kSilu, kGelu: [rows][n / 2]
  // Expert groups (ExpertRows): blockIdx.y picks a group, blockIdx.z a slice of its rows, and
  // the weights are those of the group's expert. Null group_offset: one group of `rows` rows.
  const int32_t* group_expert;
  const int32_t* group_offset;
  const int32_t* num_groups;
  const int32_t* x_rows;  // routed row -> row of x; null: the row itself
  const int32_t* y_rows;  // routed row -> row of the output; null: the row itself
  size_t expert_slots;    // 16-byte weight slots (and scales) of one expert
  // The direct kernel's normalised input (gemv_norm_prologue.cuh): x = rmsnorm(norm_x) * gain.
  const float* norm_x;    // [rows][k] float32 residual stream
  const float* norm_w;    // [k]
  float norm_eps;
  bool norm_one_plus;     // Gemma3's (1 + w) gains
  const float* norm_delta;    // Gemma3: the product added to norm_x first, normalised with norm_delta_w
  const float* norm_delta_w;
  float* norm_store;          // where block 0 stores the updated rows
  const float* norm_delta_weights;  // MoE: norm_delta holds norm_delta_count expert rows per row, summed with these
  int norm_delta_count;
  // Expert groups routed by the kernel itself (moe_select.cuh): the router's logits of
  // route_tokens tokens, and where the first block stores the routing.
  const float* route_logits;
  int route_tokens, route_experts, route_top_k;
  bool route_norm_topk_prob;
  Routing route_out;
  // FP4LLM_PDL_TRIGGER=after_wait: the direct kernel lets the next kernel be scheduled only once
  // its own wait is over, not at its start (dependent_launch.cuh).
  bool trigger_after_wait;
  // FP4LLM_WGMMA_X_PREFETCH: the wgmma GEMV asks L1 for each stager's x line of the stage after
  // next (nvfp4_gemv_wgmma.cuh), so that the register load of the next stage finds it there.
  bool x_prefetch;
  // FP4LLM_WGMMA_RING=bulk: the wgmma GEMV's ring kernels fill their weight ring by bulk copies
  // (WgmmaBulkRing) instead of per-lane cp.async (WgmmaWeightRing).
  bool ring_bulk;
  // The pipelined wgmma GEMV's stages (nvfp4_gemv_pipelined.cuh; FP4LLM_WGMMA_PIPELINE_STAGES): of
  // weights and x in the MMA layout, and (=tma) of x staged row-major from L2 before its rewrite.
  int pipeline_stages, pipeline_raw_stages;
  // FP4LLM_WGMMA_PIPELINE=tma: the weights by bulk copies, and each stage's x by one tensor copy a
  // chunk (the kernel's x_map) into 128-byte-swizzled row-major staging, then rewritten.
  bool pipeline_tma;
  // Host side: the pipelined GEMV where the default kernels would run no clusters
  // (LinearWorkspace::pipeline_unclustered).
  bool pipeline_unclustered;
  // FP4LLM_WGMMA_PIPELINE_ABLATE (a diagnosis, wrong results): bits of what the pipelined kernel
  // leaves out: 1 x's copies, 2 the weights' copies, 4 the consumers' work.
  int pipeline_ablate;
  // FP4LLM_WGMMA_PIPELINE=layout: x already in the MMA's layout (x_to_mma_layout_kernel), k_chunks
  // chunks of N x 128 bytes, each stage one bulk copy.
  const uint8_t* x_laid_out;
  // FP4LLM_WGMMA_PIPELINE=layout-written: gated products also write their activations in that
  // layout (64 tokens, or 32 for up to 32 rows: laid_out_tokens, wgmma_x_layout.cuh) here, for the
  // down projection that reads them next.
  uint8_t* act_laid_out;
  // FP4LLM_L2_AHEAD: a weight (its l2_slots 16-byte slots and their scales) whose bytes the
  // direct kernel's blocks ask L2 for first thing, each its share (l2_prefetch.cuh); null: none.
  // l2_per_expert: the weights are stacked experts' of l2_slots slots each, and a block of the
  // routed gate/up asks for its share of its group's expert's, once routed (FP4LLM_L2_AHEAD=down).
  const uint4* l2_packed;
  const uint16_t* l2_scales;
  uint32_t l2_slots;
  bool l2_per_expert;
  bool l2_own_routed;  // a block of the routed gate/up asks for its own tiles once routed (=gate_up)
  // FP4LLM_NORM_DEFERRED (gemv_deferred_norm.cuh). kAddNorm: besides y += x W^T, the updated rows
  // times the next norm's gains in BF16 (deferred_x, [rows][n]) and each tile's sums of squares of
  // them (deferred_sums_out, [rows][row_tiles]). A product after it (deferred_sums set) multiplies
  // its sums by each row's 1 / rms from those sums (deferred_parts per row) before its epilogue.
  const float* deferred_gain;
  __nv_bfloat16* deferred_x;
  float* deferred_sums_out;
  const float* deferred_sums;
  int deferred_parts;
  float deferred_eps;
};

// The rows one block multiplies and the weights it reads (its expert's, for groups).
struct Slice {
  const uint4* packed;
  const uint16_t* scales;
  const float* tile_scales;
  int begin, rows;  // routed rows [begin, begin + rows)
  const int32_t* x_rows = nullptr;  // expert groups: routed row -> row of x (GemvArgs::x_rows or the block's own)
};

__device__ __forceinline__ __nv_bfloat162 as_bf162(uint32_t bits) {
  __nv_bfloat162 v;
  memcpy(&v, &bits, 4);
  return v;
}

__device__ __forceinline__ uint32_t as_u32(__nv_bfloat162 v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  return bits;
}

// Block scales as BF16 pairs times 2^118: e2m1 * 2^-126 * scale * 2^118 = value * 2^-8 stays a
// normal BF16 with at most 6 significant bits, so one multiply per pair is exact (the 2^8 is
// given back with the global scale).
__device__ __forceinline__ void scale_pair(uint32_t two_scales, __nv_bfloat162& lo, __nv_bfloat162& hi) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two_scales), __NV_E4M3);
  const float2 f = __half22float2(__half2(h));
  const float k2p118 = __int_as_float(0x7A800000);
  lo = __float2bfloat162_rn(f.x * k2p118);
  hi = __float2bfloat162_rn(f.y * k2p118);
}
constexpr float kUnscale = 256.0f;  // 2^8, see scale_pair

// The 16 A registers of one tile-chunk for this lane: a[i] feeds MMA i (rows g, g+8 x 4 values).
__device__ __forceinline__ void dequant_chunk(uint4 w, uint32_t scales, uint32_t (&a)[4][4]) {
  __nv_bfloat162 s_lo, s_hi;
  scale_pair(scales, s_lo, s_hi);
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    a[i][0] = as_u32(__hmul2(as_bf162(e2m1_pair<0>(words[i])), s_lo));
    a[i][1] = as_u32(__hmul2(as_bf162(e2m1_pair<1>(words[i])), s_hi));
    a[i][2] = as_u32(__hmul2(as_bf162(e2m1_pair<2>(words[i])), s_lo));
    a[i][3] = as_u32(__hmul2(as_bf162(e2m1_pair<3>(words[i])), s_hi));
  }
}

// The B fragments of one 64-column chunk for this lane: x row x_row[nt] (tokens nt * 8 + g; -1
// past the slice's rows), columns t * 16 .. t * 16 + 15, zero past K or past `end` chunks.
template <int NT>
struct XFrag {
  uint4 a[NT], b[NT];
};

template <int NT>
__device__ __forceinline__ void load_x(XFrag<NT>& x, const GemvArgs& p, const int (&x_row)[NT], int chunk, int end,
                                       int t, int live = NT) {
  const int col = chunk * 64 + t * 16;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    x.a[nt] = x.b[nt] = make_uint4(0, 0, 0, 0);
    if ((nt == 0 || nt < live) && chunk < end && x_row[nt] >= 0 && col < p.k) {
      const uint4* src = reinterpret_cast<const uint4*>(p.x + size_t(x_row[nt]) * p.k + col);
      x.a[nt] = __ldg(src);
      x.b[nt] = __ldg(src + 1);
    }
  }
}

// One 64-column chunk of one 8-token group: four MMAs. Lane (g, t) holds row g's and row g+8's
// block t; MMA i takes values 4i..4i+3 of that block, so A and B agree on which column each
// MMA position is (any consistent permutation of K gives the same dot products). xa, xb: the
// lane's x columns t * 16 .. + 7 and + 8 .. + 15 (XFrag's a and b).
__device__ __forceinline__ void group_mma(float (&acc)[4], const uint32_t (&a)[4][4], uint4 xa, uint4 xb) {
  mma_bf16_16x8x16(acc, a[0], xa.x, xa.y);
  mma_bf16_16x8x16(acc, a[1], xa.z, xa.w);
  mma_bf16_16x8x16(acc, a[2], xb.x, xb.y);
  mma_bf16_16x8x16(acc, a[3], xb.z, xb.w);
}

// One 64-column chunk for every 8-token group.
// `live`: the 8-token groups that hold rows of the slice (live_token_groups); the others' MMAs are
// skipped (block-uniform), their columns never written out.
template <int NT>
__device__ __forceinline__ void chunk_mma(float (&acc)[NT][4], uint4 w, uint32_t scales, const XFrag<NT>& x,
                                          int live = NT) {
  uint32_t a[4][4];
  dequant_chunk(w, scales, a);
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
    if (nt == 0 || nt < live) group_mma(acc[nt], a, x.a[nt], x.b[nt]);
}

// kSkipPadded (expert groups, unless FP4LLM_GEMV_SKIP_PADDED_TOKENS=0): the 8-token groups of NT
// that a block's slice of `rows` rows reaches, so that an expert group of 3 rows in a kernel sized
// for every token of the step multiplies one group, not 8. Otherwise NT, a constant: plain
// products compile to the code without the bound.
template <int NT, bool kSkipPadded>
__device__ __forceinline__ int live_token_groups(int rows) {
  if constexpr (kSkipPadded && NT > 1) return min(NT, (rows + 7) / 8);
  else return NT;
}

// The x pointers of this lane for the direct kernel: row nt * 8 + g of the slice (its
// last row past its end: those MMA columns are never written out), columns from chunk `begin`.
template <int NT, bool kGrouped>
__device__ __forceinline__ void x_pointers(const GemvArgs& p, const Slice& s, int g, int t, int begin,
                                           const uint4* (&xl)[NT]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int r = min(nt * 8 + g, s.rows - 1);
    const int row = kGrouped && s.x_rows ? s.x_rows[s.begin + r] : s.begin + r;
    xl[nt] = reinterpret_cast<const uint4*>(p.x + size_t(row) * p.k + size_t(begin) * 64 + t * 16);
  }
}

// 16 bytes of x: through the read-only path from global memory, or from shared memory (kShared:
// the rows gemv_norm_prologue.cuh writes).
template <bool kShared>
__device__ __forceinline__ uint4 load_x(const uint4* p) {
  if constexpr (kShared) return *p;
  else return __ldg(p);
}

// The x fragments of chunk u past this lane's pointers x (as x_pointers gives them, advanced),
// K inside: no bounds check (the lean loop, before K's ragged last chunk).
template <int NT, bool kShared = false>
__device__ __forceinline__ XFrag<NT> x_unchecked(const uint4* const (&x)[NT], int u, int live = NT) {
  XFrag<NT> f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    f.a[nt] = f.b[nt] = make_uint4(0, 0, 0, 0);
    if (nt == 0 || nt < live) f.a[nt] = load_x<kShared>(x[nt] + u * 8), f.b[nt] = load_x<kShared>(x[nt] + u * 8 + 1);
  }
  return f;
}

// Chunk c of the work item (c from its first chunk `begin`) with its weights and scales in hand:
// x from L1 (or shared memory) through the pointers above, zero past K (only K's ragged last
// chunk checks).
template <int NT, bool kShared = false>
__device__ __forceinline__ void item_chunk_mma(float (&acc)[NT][4], uint4 w, uint32_t scales, const uint4* const (&xl)[NT],
                                               int c, int begin, int k, int t, int live = NT) {
  const bool inside = begin + c < k / 64 || (begin + c) * 64 + t * 16 < k;
  XFrag<NT> x;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    x.a[nt] = x.b[nt] = make_uint4(0, 0, 0, 0);
    if (inside && (nt == 0 || nt < live)) x.a[nt] = load_x<kShared>(xl[nt] + c * 8), x.b[nt] = load_x<kShared>(xl[nt] + c * 8 + 1);
  }
  chunk_mma<NT>(acc, w, scales, x, live);
}

// This warp's work item: lane (g, t), tile and K split, chunks [begin, end) (empty past the last
// tile; such warps still take part in the split sum's barrier). block_warps: the block's warps
// (kWarps, or kWideWarps for FP4LLM_GEMV_BLOCK_WARPS).
struct WorkItem {
  int lane, warp, g, t, tile, split, begin, end;
  bool live;
  __device__ __forceinline__ explicit WorkItem(const GemvArgs& p, int block_warps = kWarps)
      : lane(int(threadIdx.x & 31)), warp(int(threadIdx.x >> 5)), g(lane >> 2), t(lane & 3),
        tile(int(blockIdx.x) * (block_warps / p.splits) + warp / p.splits), split(warp % p.splits),
        begin(split * p.chunks_per_split), end(0), live(tile < p.row_tiles) {
    end = live ? min(p.k_chunks, begin + p.chunks_per_split) : begin;
  }
};

// A tile's K splits (warps warp .. warp + splits - 1 of the block) summed in shared memory into
// split 0's accumulators; false for the other splits, which have nothing left to do. With more
// than one split every warp of the block must call it (a block barrier).
template <int NT, int W = kWarps>
__device__ __forceinline__ bool sum_splits(float (&acc)[NT][4], int splits, int warp, int split, int lane) {
  if (splits == 1) return true;
  __shared__ float partial[W][NT * 4][32];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 4; ++j) partial[warp][nt * 4 + j][lane] = acc[nt][j];
  __syncthreads();
  if (split != 0) return false;
  for (int other = 1; other < splits; ++other)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[nt][j] += partial[warp + other][nt * 4 + j][lane];
  return true;
}

// This lane's accumulators (rows g and g+8 of the tile, tokens 2t and 2t+1 of each 8-token group,
// global scales applied) to their destination; for gated tiles row g is a gate row and row g+8
// the matching up row, so the activation needs nothing from other lanes.
// token_scale (shared memory, by token of the slice): each token's sums multiplied by it first.
template <int NT, bool kGrouped>
__device__ __forceinline__ void write_tile(const GemvArgs& p, const Slice& s, int tile, int g, int t,
                                           const float (&acc)[NT][4], const float* token_scale = nullptr) {
  const float scale_lo = s.tile_scales[2 * tile] * kUnscale, scale_hi = s.tile_scales[2 * tile + 1] * kUnscale;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int token = nt * 8 + 2 * t + j;
      if (token >= s.rows) continue;
      const int out = kGrouped && p.y_rows ? p.y_rows[s.begin + token] : s.begin + token;
      const float by = token_scale ? token_scale[token] : 1.0f;
      const float lo = acc[nt][j] * scale_lo * by, hi = acc[nt][j + 2] * scale_hi * by;
      if (p.epilogue == kSilu || p.epilogue == kGelu) {
        const int feature = tile * 8 + g;
        const __nv_bfloat16 a = __float2bfloat16_rn(gated_value(lo, hi, p.epilogue == kGelu));
        p.act[size_t(out) * (p.n / 2) + feature] = a;
        if (p.act_laid_out)
          *reinterpret_cast<__nv_bfloat16*>(p.act_laid_out + laid_out_pair_offset_for_rows(p.rows, out, feature & ~1) +
                                            2 * (feature & 1)) = a;
        continue;
      }
      const int row = tile * 16 + g;
      float* dst = p.y + size_t(out) * p.n + row;
      if (row < p.n) dst[0] = p.epilogue == kAdd ? dst[0] + lo : lo;
      if (row + 8 < p.n) dst[8] = p.epilogue == kAdd ? dst[8] + hi : hi;
    }
}

// This block's rows and weights: all rows for a plain product; for expert groups, slice
// blockIdx.z of group blockIdx.y's rows (false when that slice is empty: the block has no work).
// The group tables a grouped block reads: the routing kernel's (GemvArgs), or its own.
struct GroupTables {
  const int32_t* expert;
  const int32_t* offset;
  const int32_t* count;
  const int32_t* x_rows;
};

// Expert `expert`'s weights, no rows yet; x rows through x_rows.
__device__ __forceinline__ Slice expert_slice(const GemvArgs& p, size_t expert, const int32_t* x_rows) {
  return {p.packed + expert * p.expert_slots, p.scales + expert * p.expert_slots,
          p.tile_scales + expert * 2 * size_t(p.row_tiles), 0, 0, x_rows};
}

template <int NT>
__device__ __forceinline__ bool group_slice(const GemvArgs& p, const GroupTables& g, Slice& s) {
  const int group = int(blockIdx.y);
  if (group >= *g.count) return false;
  s = expert_slice(p, size_t(g.expert[group]), g.x_rows);
  s.begin = g.offset[group] + int(blockIdx.z) * NT * 8;
  s.rows = min(g.offset[group + 1] - s.begin, NT * 8);
  return s.rows > 0;
}

template <int NT, bool kGrouped>
__device__ __forceinline__ bool block_slice(const GemvArgs& p, Slice& s) {
  if constexpr (!kGrouped) {
    s = {p.packed, p.scales, p.tile_scales, 0, p.rows};
    return true;
  }
  return group_slice<NT>(p, {p.group_expert, p.group_offset, p.num_groups, p.x_rows}, s);
}

// The direct kernel's first step: the early-launch handshake (dependent_launch.cuh; expert
// groups wait for the routing kernel before anything else), then the block's slice; false: the
// block has no work and returns (uniform over the block, before any barrier).
// The handshake of a block that waits first thing: the next kernel is let in at the block's
// start, or once the wait is over with FP4LLM_PDL_TRIGGER=after_wait.
__device__ __forceinline__ void wait_and_let_dependents(const GemvArgs& p) {
  if (!p.trigger_after_wait) let_dependents_start();
  wait_for_producer();
  if (p.trigger_after_wait) let_dependents_start();
}

template <int NT, bool kGrouped>
__device__ __forceinline__ bool enter_block(const GemvArgs& p, Slice& s) {
  if constexpr (kGrouped) wait_and_let_dependents(p);
  else if (!p.trigger_after_wait) let_dependents_start();  // plain products wait in their chunk loop
  return block_slice<NT, kGrouped>(p, s);
}


}  // namespace

}  // namespace fp4llm::cuda
