#include <string>
#include <cuda_fp8.h>

#include "backend/cuda/activation.cuh"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/mma_bf16.cuh"

#include <algorithm>
#include <cstdlib>

#include "backend/cuda/launch_grid.hpp"
#include "backend/cuda/nvfp4_linear.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

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

// Register slot J of a word (nvfp4_tiles.hpp): both codes moved to BF16 sign, low exponent and
// top mantissa bits, giving each value times 2^-126 exactly (E2M1's 0.5 becomes a subnormal).
template <int J>
__device__ __forceinline__ uint32_t e2m1_pair(uint32_t w) {
  constexpr uint32_t kSign = 0x80008000u, kMagnitude = 0x01C001C0u;
  const uint32_t sign = (w << (4 * J)) & kSign;
  const uint32_t magnitude = (4 * J >= 6 ? w << (4 * J - 6) : w >> (6 - 4 * J)) & kMagnitude;
  return sign | magnitude;
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
__device__ __forceinline__ void copy_async4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(uint32_t(__cvta_generic_to_shared(dst))), "l"(src));
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void copy_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// One warp's ring of kStages stages, each kStageChunks tile-chunks (weights, then scales).
struct WarpRing {
  uint4 w[kStages][kStageChunks][32];
  uint16_t s[kStages][kStageChunks][32];
};

// Lane's share of copying chunks [c0, c0 + kStageChunks) into one stage (one commit group, empty
// past `end`): each lane its own 16 weight bytes, lanes 0-15 the 64 bytes of scales 4 at a time.
__device__ __forceinline__ void issue_stage(WarpRing& ring, int stage, const uint4* wp, const uint16_t* sp, int c0,
                                            int end, int lane) {
#pragma unroll
  for (int u = 0; u < kStageChunks; ++u) {
    if (c0 + u >= end) break;
    copy_async16(&ring.w[stage][u][lane], wp + size_t(c0 + u) * 32 + lane);
    if (lane < 16) copy_async4(&ring.s[stage][u][2 * lane], sp + size_t(c0 + u) * 32 + 2 * lane);
  }
  copy_async_commit();
}

// This lane's accumulators (rows g and g+8 of the tile, tokens 2t and 2t+1 of each 8-token group,
// global scales applied) to their destination; for gated tiles row g is a gate row and row g+8
// the matching up row, so the activation needs nothing from other lanes.
template <int NT, bool kGrouped>
__device__ __forceinline__ void write_tile(const GemvArgs& p, const Slice& s, int tile, int g, int t,
                                           const float (&acc)[NT][4]) {
  const float scale_lo = s.tile_scales[2 * tile] * kUnscale, scale_hi = s.tile_scales[2 * tile + 1] * kUnscale;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int token = nt * 8 + 2 * t + j;
      if (token >= s.rows) continue;
      const int out = kGrouped && p.y_rows ? p.y_rows[s.begin + token] : s.begin + token;
      const float lo = acc[nt][j] * scale_lo, hi = acc[nt][j + 2] * scale_hi;
      if (p.epilogue == kSilu || p.epilogue == kGelu) {
        p.act[size_t(out) * (p.n / 2) + tile * 8 + g] = __float2bfloat16_rn(gated_value(lo, hi, p.epilogue == kGelu));
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
template <int NT, bool kGrouped>
__device__ __forceinline__ bool block_slice(const GemvArgs& p, Slice& s) {
  s = {p.packed, p.scales, p.tile_scales, 0, p.rows};
  if constexpr (!kGrouped) return true;
  const int group = int(blockIdx.y);
  if (group >= *p.num_groups) return false;
  s.begin = p.group_offset[group] + int(blockIdx.z) * NT * 8;
  s.rows = min(p.group_offset[group + 1] - s.begin, NT * 8);
  const size_t expert = size_t(p.group_expert[group]);
  s.packed += expert * p.expert_slots;
  s.scales += expert * p.expert_slots;
  s.tile_scales += expert * 2 * size_t(p.row_tiles);
  return s.rows > 0;
}

// Decode-shape NVFP4 GEMM, written against the memory bound: each weight byte is read once. Each
// warp streams one (tile, K split) work item through its own ring of asynchronous copies
// (kStages x kStageChunks chunks in flight, no registers held), dequantizes each chunk in
// registers and feeds BF16 tensor cores with FP32 accumulation. A block holds kWarps / splits
// tiles, so the splits of a tile meet in shared memory and nothing crosses blocks. With expert
// groups (MoE) the grid's y and z dimensions run over groups and slices of their rows.
//
// kPrefetchX: each stage's x fragments are loaded while the previous stage's MMAs run, instead of
// just before their own (an L2 round trip per stage off the critical path, for 32 * NT more
// registers; one 8-token group only).
template <int NT, bool kGrouped, bool kPrefetchX>
__global__ void __launch_bounds__(kWarps * 32) nvfp4_gemv_kernel(GemvArgs p) {
  Slice s;
  if (!block_slice<NT, kGrouped>(p, s)) return;  // uniform over the block, before any barrier
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int tile = blockIdx.x * (kWarps / p.splits) + warp / p.splits, split = warp % p.splits;
  const bool live = tile < p.row_tiles;
  const int begin = split * p.chunks_per_split;
  const int end = live ? min(p.k_chunks, begin + p.chunks_per_split) : begin;
  const uint4* wp = s.packed + size_t(tile) * p.k_chunks * 32;
  const uint16_t* sp = s.scales + size_t(tile) * p.k_chunks * 32;
  int x_row[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int r = nt * 8 + g;
    x_row[nt] = r >= s.rows ? -1 : kGrouped && p.x_rows ? p.x_rows[s.begin + r] : s.begin + r;
  }
  extern __shared__ uint4 dynamic_smem[];
  WarpRing& ring = reinterpret_cast<WarpRing*>(dynamic_smem)[warp];
  float acc[NT][4] = {};
#pragma unroll
  for (int st = 0; st < kStages; ++st) issue_stage(ring, st, wp, sp, begin + st * kStageChunks, end, lane);
  XFrag<NT> xs[kStageChunks];  // x of the stage about to be multiplied (kPrefetchX)
  if constexpr (kPrefetchX) {
#pragma unroll
    for (int u = 0; u < kStageChunks; ++u) load_x(xs[u], p, x_row, begin + u, end, t);
  }
  for (int c0 = begin, st = 0; c0 < end; c0 += kStageChunks, st = (st + 1) % kStages) {
    copy_async_wait<kStages - 1>();  // this lane's copies of stage `st` have landed
    __syncwarp();                    // ... and every other lane's
    uint4 w[kStageChunks];
    uint32_t sc[kStageChunks];
#pragma unroll
    for (int u = 0; u < kStageChunks; ++u) w[u] = ring.w[st][u][lane], sc[u] = ring.s[st][u][lane];
    __syncwarp();  // the stage is read: refill it
    issue_stage(ring, st, wp, sp, c0 + kStages * kStageChunks, end, lane);
    if constexpr (kPrefetchX) {
      XFrag<NT> next[kStageChunks];
#pragma unroll
      for (int u = 0; u < kStageChunks; ++u) load_x(next[u], p, x_row, c0 + kStageChunks + u, end, t);
#pragma unroll
      for (int u = 0; u < kStageChunks; ++u)
        if (c0 + u < end) chunk_mma<NT>(acc, w[u], sc[u], xs[u]);
#pragma unroll
      for (int u = 0; u < kStageChunks; ++u) xs[u] = next[u];
    } else {
#pragma unroll
      for (int u = 0; u < kStageChunks; ++u) {
        if (c0 + u >= end) continue;
        XFrag<NT> x;
        load_x(x, p, x_row, c0 + u, c0 + u + 1, t);  // in range: checked above
        chunk_mma<NT>(acc, w[u], sc[u], x);
      }
    }
  }
  if (p.splits > 1) {
    __shared__ float partial[kWarps][NT * 4][32];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int j = 0; j < 4; ++j) partial[warp][nt * 4 + j][lane] = acc[nt][j];
    __syncthreads();
    if (split != 0) return;
    for (int other = 1; other < p.splits; ++other)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[nt][j] += partial[warp + other][nt * 4 + j][lane];
  }
  if (live) write_tile<NT, kGrouped>(p, s, tile, g, t, acc);
}

// Register-pipelined variant of the same product (FP4LLM_GEMV_KERNEL=direct), written against
// the instruction-issue bound the ring kernel hit (161 warp instructions per 576-byte chunk, H200,
// 2026-12-04): weights and scales go straight to registers with one 16-byte and one 2-byte load
// per lane per chunk, the next kGroup chunks requested before this group's arithmetic; x comes
// from L1 through pointers computed once per work item; chunks carry no bounds checks except
// K's ragged last chunk. Tokens past the slice read a valid row of x: their MMA columns are
// never written out.
#ifndef FP4LLM_GEMV_GROUP
#define FP4LLM_GEMV_GROUP 2
#endif
constexpr int kGroup = FP4LLM_GEMV_GROUP;

__device__ __forceinline__ uint4 load_streaming(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
__device__ __forceinline__ uint32_t load_streaming(const uint16_t* p) {
  unsigned short v;
  asm volatile("ld.global.nc.L1::no_allocate.u16 %0, [%1];\n" : "=h"(v) : "l"(p));
  return v;
}

#ifndef FP4LLM_GEMV_DIRECT_BLOCKS
#define FP4LLM_GEMV_DIRECT_BLOCKS 3
#endif
template <int NT, bool kGrouped>
__global__ void __launch_bounds__(kWarps * 32, NT == 1 ? FP4LLM_GEMV_DIRECT_BLOCKS : 2) nvfp4_gemv_direct_kernel(GemvArgs p) {
  let_dependents_start();
  if constexpr (kGrouped) wait_for_producer();  // the groups come from the routing kernel
  Slice s;
  if (!block_slice<NT, kGrouped>(p, s)) return;  // uniform over the block, before any barrier
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int tile = blockIdx.x * (kWarps / p.splits) + warp / p.splits, split = warp % p.splits;
  const bool live = tile < p.row_tiles;
  const int begin = split * p.chunks_per_split;
  const int end = live ? min(p.k_chunks, begin + p.chunks_per_split) : begin;
  const int full = p.k / 64;  // chunks whose 64 columns all lie inside K
  const uint4* wl = s.packed + (size_t(tile) * p.k_chunks + begin) * 32 + lane;
  const uint16_t* sl = s.scales + (size_t(tile) * p.k_chunks + begin) * 32 + lane;
  const int n = end - begin;
  uint4 wn[kGroup];
  uint32_t sn[kGroup];
#pragma unroll
  for (int u = 0; u < kGroup; ++u)
    if (u < n) wn[u] = load_streaming(wl + u * 32), sn[u] = load_streaming(sl + u * 32);
  if constexpr (!kGrouped) wait_for_producer();  // weights are in flight; x is the producer's output
  const uint4* xl[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int r = min(nt * 8 + g, s.rows - 1);
    const int row = kGrouped && p.x_rows ? p.x_rows[s.begin + r] : s.begin + r;
    xl[nt] = reinterpret_cast<const uint4*>(p.x + size_t(row) * p.k + size_t(begin) * 64 + t * 16);
  }
  float acc[NT][4] = {};
  for (int c = 0; c < n; c += kGroup) {
    uint4 w[kGroup];
    uint32_t sc[kGroup];
#pragma unroll
    for (int u = 0; u < kGroup; ++u) w[u] = wn[u], sc[u] = sn[u];
#pragma unroll
    for (int u = 0; u < kGroup; ++u)
      if (c + kGroup + u < n)
        wn[u] = load_streaming(wl + (c + kGroup + u) * 32), sn[u] = load_streaming(sl + (c + kGroup + u) * 32);
#pragma unroll
    for (int u = 0; u < kGroup; ++u) {
      if (c + u >= n) break;
      const bool inside = begin + c + u < full || (begin + c + u) * 64 + t * 16 < p.k;
      XFrag<NT> x;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        x.a[nt] = x.b[nt] = make_uint4(0, 0, 0, 0);
        if (inside) x.a[nt] = __ldg(xl[nt] + (c + u) * 8), x.b[nt] = __ldg(xl[nt] + (c + u) * 8 + 1);
      }
      chunk_mma<NT>(acc, w[u], sc[u], x);
    }
  }
  if (p.splits > 1) {
    __shared__ float partial[kWarps][NT * 4][32];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int j = 0; j < 4; ++j) partial[warp][nt * 4 + j][lane] = acc[nt][j];
    __syncthreads();
    if (split != 0) return;
    for (int other = 1; other < p.splits; ++other)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[nt][j] += partial[warp + other][nt * 4 + j][lane];
  }
  if (live) write_tile<NT, kGrouped>(p, s, tile, g, t, acc);
}

// Prefill: the whole matrix to BF16 (row-major, k_chunks * 64 columns), global scale included.
__global__ void dequantize_kernel(const uint4* packed, const uint16_t* scales, const float* tile_scales,
                                  int k_chunks, size_t slots, __nv_bfloat16* out) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < slots; i += size_t(gridDim.x) * blockDim.x) {
    const int lane = int(i % 32), g = lane >> 2, t = lane & 3;
    const size_t tile = i / 32 / k_chunks, chunk = i / 32 % k_chunks;
    uint32_t a[4][4];
    dequant_chunk(packed[i], scales[i], a);
    const size_t ld = size_t(k_chunks) * 64;
#pragma unroll
    for (int upper = 0; upper < 2; ++upper) {
      const float gs = tile_scales[2 * tile + upper] * kUnscale;
      __nv_bfloat16* dst = out + (tile * 16 + g + 8 * upper) * ld + chunk * 64 + t * 16;
#pragma unroll
      for (int v = 0; v < 16; v += 2) {
        // Values v, v+1 of the block: MMA v / 4, register slot upper + 2 * (v % 4 / 2).
        const float2 f = __bfloat1622float2(as_bf162(a[v / 4][upper + 2 * (v % 4 / 2)]));
        dst[v] = __float2bfloat16_rn(f.x * gs);
        dst[v + 1] = __float2bfloat16_rn(f.y * gs);
      }
    }
  }
}

// Prefill of gated tiles: cuBLAS wrote both halves of every tile; pair them up.
__global__ void gated_rows_kernel(const float* y, int64_t rows, int64_t n, bool gelu, __nv_bfloat16* out) {
  const int64_t width = n / 2;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(rows * width); i += size_t(gridDim.x) * blockDim.x) {
    const size_t token = i / width, f = i % width;
    const float* row = y + token * n + f / 8 * 16 + f % 8;
    out[i] = __float2bfloat16_rn(gated_value(row[0], row[8], gelu));
  }
}

// Fewest chunks per warp (FP4LLM_GEMV_MIN_CHUNKS, to compare; default 8). Each work item's
// start and split reduction cost about 30 instructions per chunk at 8 (H200, 2026-12-04), which
// longer items would amortize at the price of fewer warps in flight.
int64_t min_chunks_per_warp() {
  static const int64_t chunks = std::max<int64_t>(1, knob_int("FP4LLM_GEMV_MIN_CHUNKS", 8));
  return chunks;
}

// K splits per tile (1, 2, 4 or 8 warps), as many as keep at least min_chunks_per_warp() chunks
// per warp: many short blocks fill the SMs in several waves, so the last wave's tail is small;
// measured on the H100 (2026-11-25) against fewer, longer items (docs/PERFORMANCE.md).
int choose_splits(int64_t k_chunks) {
  const int64_t min_chunks = min_chunks_per_warp();
  int splits = 1;
  while (splits < kWarps && k_chunks / (2 * splits) >= min_chunks) splits *= 2;
  return splits;
}

// The plain product and the expert-grouped one are separate instantiations, so the plain one
// carries no index tables (registers) it does not use.
template <int NT, bool kGrouped, bool kPrefetchX = false>
void launch_gemv(const GemvArgs& p, unsigned groups, unsigned slices, cudaStream_t stream) {
  const int tiles_per_block = kWarps / p.splits;
  constexpr int kSmem = kWarps * sizeof(WarpRing);
  static const bool configured = [] {
    FP4LLM_CUDA_CHECK(cudaFuncSetAttribute(nvfp4_gemv_kernel<NT, kGrouped, kPrefetchX>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)configured;
  const dim3 grid(unsigned((p.row_tiles + tiles_per_block - 1) / tiles_per_block), groups, slices);
  nvfp4_gemv_kernel<NT, kGrouped, kPrefetchX><<<grid, kWarps * 32, kSmem, stream>>>(p);
  FP4LLM_CUDA_LAUNCHED();
}

void gemm_bf16(cublasHandle_t h, const __nv_bfloat16* w, int64_t ldw, int64_t n, int64_t k,
               const __nv_bfloat16* x, int64_t rows, float* y, float beta, cudaStream_t stream) {
  const float one = 1.0f;
  FP4LLM_CUBLAS_CHECK(cublasSetStream(h, stream));
  FP4LLM_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(rows), int(k), &one, w,
                                   CUDA_R_16BF, int(ldw), x, CUDA_R_16BF, int(k), &beta, y,
                                   CUDA_R_32F, int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// Rows above kMaxDecodeRows: the weight to BF16 scratch, then cuBLAS (y = or += x W^T).
void dequantized_gemm(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y, float beta,
                      LinearWorkspace& ws, cudaStream_t stream) {
  const size_t slots = size_t(w.row_tiles * w.k_chunks * 32);
  const size_t need = size_t(w.row_tiles * 16 * w.k_chunks * 64);
  if (ws.dequantized.size() < need) throw_error("NVFP4 linear: dequantization scratch too small");
  dequantize_kernel<<<grid_for(int64_t(slots), 256), 256, 0, stream>>>(
      reinterpret_cast<const uint4*>(w.packed.data()), w.scales.data(), w.tile_scales.data(), int(w.k_chunks), slots,
      ws.dequantized.data());
  FP4LLM_CUDA_LAUNCHED();
  gemm_bf16(ws.cublas, ws.dequantized.data(), w.k_chunks * 64, w.out_features, w.in_features, x, rows, y, beta, stream);
}

// x prefetching for up to 8 tokens (kPrefetchX): measured on the H100 (2026-11-25) +2% at batch 1
// (Qwen3-8B; +3% Qwen3-30B-A3B) but -4% at batch 16, where its registers cost more than the
// hidden latency; FP4LLM_GEMV_PREFETCH=0 turns it off, to compare.
bool prefetch_x() {
  static const bool on = knob_on("FP4LLM_GEMV_PREFETCH");
  return on;
}

// The kernel instance for `rows` tokens (per group: the most one group can hold): 8-token groups
// per warp, and for more than 64 rows (expert groups only) slices of 64 over grid z.
template <int NT, bool kGrouped>
void launch_gemv_direct(const GemvArgs& p, unsigned groups, unsigned slices, cudaStream_t stream) {
  const int tiles_per_block = kWarps / p.splits;
  const dim3 grid(unsigned((p.row_tiles + tiles_per_block - 1) / tiles_per_block), groups, slices);
  // Early start measured on the H200 (2026-12-04, same-call A/B): Qwen3-30B-A3B's expert groups
  // 313.1 against 298.8 tok/s at batch 1, 1,910 against 1,872 at 16; Qwen3-8B's plain products
  // 333.3 against 334.2 at batch 1 and 4,382 against 4,556 at 16, so plain products launch plainly.
  launch_dependent(kGrouped, nvfp4_gemv_direct_kernel<NT, kGrouped>, grid, dim3(kWarps * 32), 0, stream, p);
}

// Up to 16 rows go to the register-pipelined kernel (measured on the H200, 2026-12-04: Qwen3-8B's
// four projections 57.2 against 66.5 us per layer at batch 1, 65.5 against 81.0 at batch 16;
// Qwen3-30B-A3B's expert groups 304.3 against 301.2 tok/s at batch 1, 1,887 against 1,783 at 16).
// FP4LLM_GEMV_KERNEL=ring keeps every product on the copy ring, to compare.
bool use_direct(int64_t rows) {
  static const bool ring = [] {
    const char* v = std::getenv("FP4LLM_GEMV_KERNEL");
    return v && std::string(v) == "ring";
  }();
  return rows <= 16 && !ring;
}

template <bool kGrouped>
void launch_for_rows(const GemvArgs& p, int64_t rows, unsigned groups, cudaStream_t stream) {
  if (use_direct(rows)) {
    if (rows <= 8) launch_gemv_direct<1, kGrouped>(p, groups, 1, stream);
    else launch_gemv_direct<2, kGrouped>(p, groups, 1, stream);
    return;
  }
  if (rows <= 8) prefetch_x() ? launch_gemv<1, kGrouped, true>(p, groups, 1, stream) : launch_gemv<1, kGrouped>(p, groups, 1, stream);
  else if (rows <= 16) launch_gemv<2, kGrouped>(p, groups, 1, stream);
  else if (rows <= 32) launch_gemv<4, kGrouped>(p, groups, 1, stream);
  else launch_gemv<8, kGrouped>(p, groups, unsigned((rows + 63) / 64), stream);
}

// `rows`: the rows of x, or for expert groups the most rows one group can hold.
void gemv(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, GemvArgs p, cudaStream_t stream,
          unsigned groups = 1) {
  const int splits = choose_splits(w.k_chunks);
  p.packed = reinterpret_cast<const uint4*>(w.packed.data());
  p.scales = w.scales.data();
  p.tile_scales = w.tile_scales.data();
  p.x = x;
  p.rows = int(rows);
  p.n = int(w.out_features);
  p.k = int(w.in_features);
  p.k_chunks = int(w.k_chunks);
  p.row_tiles = int(w.row_tiles);
  p.splits = splits;
  p.chunks_per_split = int((w.k_chunks + splits - 1) / splits);
  p.expert_slots = size_t(w.row_tiles * w.k_chunks * 32);
  if (p.group_offset) launch_for_rows<true>(p, rows, groups, stream);
  else launch_for_rows<false>(p, rows, 1, stream);
}

void set_groups(GemvArgs& p, const ExpertRows& r) {
  p.group_expert = r.group_expert;
  p.group_offset = r.group_offset;
  p.num_groups = r.num_groups;
}

DeviceNvfp4Linear shaped_like(const Nvfp4Tiles& tiles) {
  DeviceNvfp4Linear d;
  d.out_features = tiles.out_features;
  d.in_features = tiles.in_features;
  d.row_tiles = tiles.row_tiles;
  d.k_chunks = tiles.k_chunks;
  d.gated = tiles.gated;
  return d;
}

}  // namespace

DeviceNvfp4Linear upload_nvfp4(const Nvfp4Tiles& tiles) {
  DeviceNvfp4Linear d = shaped_like(tiles);
  d.packed = DeviceBuffer<uint8_t>::from_host(tiles.packed);
  d.scales = DeviceBuffer<uint16_t>::from_host(tiles.scales);
  d.tile_scales = DeviceBuffer<float>::from_host(tiles.tile_scales);
  return d;
}

DeviceNvfp4Linear allocate_experts(const Nvfp4Tiles& first, int64_t experts) {
  DeviceNvfp4Linear d = shaped_like(first);
  d.experts = experts;
  d.packed = DeviceBuffer<uint8_t>(first.packed.size() * size_t(experts));
  d.scales = DeviceBuffer<uint16_t>(first.scales.size() * size_t(experts));
  d.tile_scales = DeviceBuffer<float>(first.tile_scales.size() * size_t(experts));
  upload_expert(d, 0, first);
  return d;
}

void upload_expert(DeviceNvfp4Linear& d, int64_t expert, const Nvfp4Tiles& t) {
  if (expert < 0 || expert >= d.experts || t.row_tiles != d.row_tiles || t.k_chunks != d.k_chunks ||
      t.gated != d.gated || t.out_features != d.out_features)
    throw_error("NVFP4 experts: expert " + std::to_string(expert) + " does not have the shape of expert 0");
  const auto put = [&](auto* base, const auto& host) {
    const size_t n = host.size();
    FP4LLM_CUDA_CHECK(cudaMemcpy(base + n * size_t(expert), host.data(), n * sizeof(host[0]), cudaMemcpyHostToDevice));
  };
  put(d.packed.data(), t.packed);
  put(d.scales.data(), t.scales);
  put(d.tile_scales.data(), t.tile_scales);
}

void nvfp4_linear(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y,
                  LinearWorkspace& ws, cudaStream_t stream, LinearOutput mode) {
  if (rows <= 0) return;
  if (w.gated) throw_error("NVFP4 linear: gated tiles go through nvfp4_gated");
  if (rows > kMaxDecodeRows) return dequantized_gemm(w, x, rows, y, mode == LinearOutput::Add ? 1.0f : 0.0f, ws, stream);
  GemvArgs p{};
  p.epilogue = mode == LinearOutput::Add ? kAdd : kStore;
  p.y = y;
  gemv(w, x, rows, p, stream);
}

void nvfp4_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, bool gelu,
                 __nv_bfloat16* out, float* scratch, LinearWorkspace& ws, cudaStream_t stream) {
  if (rows <= 0) return;
  if (!w.gated) throw_error("NVFP4 gated linear: the weight is not in the gated tile layout");
  if (rows > kMaxDecodeRows) {
    if (!scratch) throw_error("NVFP4 gated linear: more than 64 rows need a scratch buffer");
    dequantized_gemm(w, x, rows, scratch, 0.0f, ws, stream);
    gated_rows_kernel<<<grid_for(rows * w.out_features / 2, 256), 256, 0, stream>>>(scratch, rows, w.out_features,
                                                                                    gelu, out);
    FP4LLM_CUDA_LAUNCHED();
    return;
  }
  GemvArgs p{};
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  gemv(w, x, rows, p, stream);
}

void nvfp4_experts_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, const ExpertRows& r, bool gelu,
                         __nv_bfloat16* out, cudaStream_t stream) {
  if (!w.gated) throw_error("NVFP4 expert gate/up: the weights are not in the gated tile layout");
  if (r.max_rows <= 0 || r.max_groups <= 0) return;
  GemvArgs p{};
  set_groups(p, r);
  p.x_rows = r.row_token;
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  gemv(w, x, r.max_rows, p, stream, unsigned(r.max_groups));
}

void nvfp4_experts_down(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r, float* y,
                        cudaStream_t stream) {
  if (w.gated) throw_error("NVFP4 expert down projection: gated tiles go through nvfp4_experts_gated");
  if (r.max_rows <= 0 || r.max_groups <= 0) return;
  GemvArgs p{};
  set_groups(p, r);
  p.y_rows = r.row_slot;
  p.epilogue = kStore;
  p.y = y;
  gemv(w, act, r.max_rows, p, stream, unsigned(r.max_groups));
}

void bf16_linear(const __nv_bfloat16* w, int64_t out_features, int64_t in_features,
                 const __nv_bfloat16* x, int64_t rows, float* y, LinearWorkspace& ws,
                 cudaStream_t stream) {
  gemm_bf16(ws.cublas, w, in_features, out_features, in_features, x, rows, y, 0.0f, stream);
}

}  // namespace fp4llm::cuda
