// Pieces shared by the decode-shape NVFP4 GEMV kernels (nvfp4_linear.cu: tile x K-split work
// items and expert groups; nvfp4_stream_gemv.cu: equal contiguous chunk ranges per warp): the
// kernel arguments, the per-warp ring of asynchronous copies, dequantization of one tile-chunk
// into BF16 MMA fragments, and the epilogue that writes a finished tile.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cstdint>
#include <cstring>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/mma_bf16.cuh"
#include "backend/cuda/nvfp4_bit_layout.hpp"

namespace fp4llm::cuda::gemv {
constexpr int kWarps = 8;   // warps per block: kWarps / splits tiles, each split over `splits` warps
// Per-warp ring of asynchronous copies: kStages x kStageChunks tile-chunks (576 bytes each).
// Overridable at compile time for tools/gpu_gemv_sweep.sh.
#ifndef FP4LLM_GEMV_STAGES
#define FP4LLM_GEMV_STAGES 4
#endif
#ifndef FP4LLM_GEMV_STAGE_CHUNKS
#define FP4LLM_GEMV_STAGE_CHUNKS 2
#endif
constexpr int kStages = FP4LLM_GEMV_STAGES;
constexpr int kStageChunks = FP4LLM_GEMV_STAGE_CHUNKS;

enum Epilogue : int { kStore, kAdd, kSilu, kGelu };

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
};

// The rows one block multiplies and the weights it reads (its expert's, for groups).
struct Slice {
  const uint4* packed;
  const uint16_t* scales;
  const float* tile_scales;
  int begin, rows;  // routed rows [begin, begin + rows)
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
    a[i][0] = as_u32(__hmul2(as_bf162(e2m1_bf16_pair<0>(words[i])), s_lo));
    a[i][1] = as_u32(__hmul2(as_bf162(e2m1_bf16_pair<1>(words[i])), s_hi));
    a[i][2] = as_u32(__hmul2(as_bf162(e2m1_bf16_pair<2>(words[i])), s_lo));
    a[i][3] = as_u32(__hmul2(as_bf162(e2m1_bf16_pair<3>(words[i])), s_hi));
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
                                       int t) {
  const int col = chunk * 64 + t * 16;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    x.a[nt] = x.b[nt] = make_uint4(0, 0, 0, 0);
    if (chunk < end && x_row[nt] >= 0 && col < p.k) {
      const uint4* src = reinterpret_cast<const uint4*>(p.x + size_t(x_row[nt]) * p.k + col);
      x.a[nt] = __ldg(src);
      x.b[nt] = __ldg(src + 1);
    }
  }
}

// One 64-column chunk: four MMAs per 8-token group. Lane (g, t) holds row g's and row g+8's
// block t; MMA i takes values 4i..4i+3 of that block, so A and B agree on which column each
// MMA position is (any consistent permutation of K gives the same dot products).
template <int NT>
__device__ __forceinline__ void chunk_mma(float (&acc)[NT][4], uint4 w, uint32_t scales, const XFrag<NT>& x) {
  uint32_t a[4][4];
  dequant_chunk(w, scales, a);
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    mma_bf16_16x8x16(acc[nt], a[0], x.a[nt].x, x.a[nt].y);
    mma_bf16_16x8x16(acc[nt], a[1], x.a[nt].z, x.a[nt].w);
    mma_bf16_16x8x16(acc[nt], a[2], x.b[nt].x, x.b[nt].y);
    mma_bf16_16x8x16(acc[nt], a[3], x.b[nt].z, x.b[nt].w);
  }
}

// Asynchronous global -> shared copies (sm_80+): bytes in flight without holding registers.
__device__ __forceinline__ void copy_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(uint32_t(__cvta_generic_to_shared(dst))), "l"(src));
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void copy_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// One warp's ring of kStages stages, each kStageChunks tile-chunks (weights, then scales).
struct WarpRing {
  uint4 w[kStages][kStageChunks][32];
  alignas(16) uint16_t s[kStages][kStageChunks][32];
};

// Lane's share of copying chunks [c0, c0 + kStageChunks) into one stage (one commit group, empty
// past `end`): each lane its own 16 weight bytes, lanes 0-3 the 64 bytes of scales.
__device__ __forceinline__ void issue_stage(WarpRing& ring, int stage, const uint4* wp, const uint16_t* sp, int c0,
                                            int end, int lane) {
#pragma unroll
  for (int u = 0; u < kStageChunks; ++u) {
    if (c0 + u >= end) break;
    copy_async16(&ring.w[stage][u][lane], wp + size_t(c0 + u) * 32 + lane);
    if (lane < 4) copy_async16(&ring.s[stage][u][8 * lane], sp + size_t(c0 + u) * 32 + 8 * lane);
  }
  copy_async_commit();
}

// Rows g and g + 8 of `tile` for output row `out` (a token), global scales applied, to their
// destination; for gated tiles row g is a gate row and row g + 8 the matching up row, so the
// activation needs nothing from other lanes.
__device__ __forceinline__ void store_rows(const GemvArgs& p, int tile, int g, int out, float lo, float hi) {
  if (p.epilogue == kSilu || p.epilogue == kGelu) {
    p.act[size_t(out) * (p.n / 2) + tile * 8 + g] = __float2bfloat16_rn(gated_value(lo, hi, p.epilogue == kGelu));
    return;
  }
  const int row = tile * 16 + g;
  float* dst = p.y + size_t(out) * p.n + row;
  if (row < p.n) dst[0] = p.epilogue == kAdd ? dst[0] + lo : lo;
  if (row + 8 < p.n) dst[8] = p.epilogue == kAdd ? dst[8] + hi : hi;
}

// The output row of slice row `token`.
template <bool kGrouped>
__device__ __forceinline__ int output_row(const GemvArgs& p, const Slice& s, int token) {
  return kGrouped && p.y_rows ? p.y_rows[s.begin + token] : s.begin + token;
}

// This lane's accumulators of the 8-token kernel: rows g and g+8 of the tile, tokens 2t and 2t+1
// of each 8-token group.
template <int NT, bool kGrouped>
__device__ __forceinline__ void write_tile(const GemvArgs& p, const Slice& s, int tile, int g, int t,
                                           const float (&acc)[NT][4]) {
  const float scale_lo = s.tile_scales[2 * tile] * kUnscale, scale_hi = s.tile_scales[2 * tile + 1] * kUnscale;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int token = nt * 8 + 2 * t + j;
      if (token < s.rows)
        store_rows(p, tile, g, output_row<kGrouped>(p, s, token), acc[nt][j] * scale_lo, acc[nt][j + 2] * scale_hi);
    }
}

// This block's rows and weights: all rows for a plain product; for expert groups, slice
// blockIdx.z of group blockIdx.y's rows (false when that slice is empty: the block has no work).
template <int kSliceRows, bool kGrouped>
__device__ __forceinline__ bool block_slice(const GemvArgs& p, Slice& s) {
  s = {p.packed, p.scales, p.tile_scales, 0, p.rows};
  if constexpr (!kGrouped) return true;
  const int group = int(blockIdx.y);
  if (group >= *p.num_groups) return false;
  s.begin = p.group_offset[group] + int(blockIdx.z) * kSliceRows;
  s.rows = min(p.group_offset[group + 1] - s.begin, kSliceRows);
  const size_t expert = size_t(p.group_expert[group]);
  s.packed += expert * p.expert_slots;
  s.scales += expert * p.expert_slots;
  s.tile_scales += expert * 2 * size_t(p.row_tiles);
  return s.rows > 0;
}

}  // namespace fp4llm::cuda::gemv
