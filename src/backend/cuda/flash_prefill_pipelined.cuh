// The prefill attention kernel written against the tensor cores' issue rate (head_dim 64 and
// 128; FP4LLM_FLASH_PIPELINED=0 keeps the first kernel). The first kernel
// (flash_prefill.cu) ran at 65 TFLOP/s on the H100 (docs/PERFORMANCE.md, fourteenth session):
// each key tile was read from the cache, widened element by element through float registers and
// stored with 2-byte writes (V transposed, 8-way bank conflicts), with nothing in flight while
// the block computed. Here the next tile's cache rows are in flight (cp.async, zero-filled past
// the last key) while the block computes on this one; a tile is widened in shared memory from its
// raw bytes with 16-byte stores (E4M3 -> FP16 two values an instruction, exactly; BF16 copied);
// fragments come through ldmatrix, V's through ldmatrix.trans from the row-major tile, so nothing
// is transposed. FP8 caches take FP16 operands (Q and P too), BF16 caches BF16.
// Per block: one query tile (up to 64 tokens of a sequence) and one query head, 4 warps of 16
// rows; shared memory: Q, K and V as [64][D + 8] 16-bit rows (the pad keeps ldmatrix rows on
// distinct banks; under FP4LLM_FLASH_WGMMA Q and K as core matrices, and V too with
// FP4LLM_FLASH_WGMMA_PV) and one raw tile of cache rows.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/attention_rope.cuh"
#include "backend/cuda/copy_async.cuh"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/flash_prefill.hpp"
#include "backend/cuda/flash_softmax.cuh"
#include "backend/cuda/kv_cache_load.cuh"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/mma_16bit.cuh"
#include "backend/cuda/wgmma_bf16.cuh"

namespace fp4llm::cuda {

namespace {

struct FlashArgs : AttentionInputs {
  const QueryTile* tiles;
  AttentionParams p;
  __nv_bfloat16* out;
  bool mask_every_tile;  // FP4LLM_FLASH_MASK_EVERY_TILE=1: the per-element mask on every key tile
  bool heads_fastest;    // the grid's x is the head group, y the tile (FP4LLM_FLASH_LONGEST_FIRST)
  // rope.qkv set (FP4LLM_FLASH_ROPE): the queries come raw from q|k|v rows and stage_queries
  // normalises and rotates them (q is not read); the rope kernel wrote only the keys and values.
  RopeInAttentionArgs rope;
};

// The grid flash_block reads: head groups x query tiles (heads_fastest), or query tiles x head
// groups. The tiles come longest first (QueryTilePlan), and blocks start in linear grid order:
// with the head groups fastest the first wave takes the longest tiles of every head (list
// scheduling, longest first); with the tiles fastest (FP4LLM_FLASH_LONGEST_FIRST=0, the former
// order) the first wave holds whole heads, short tiles included, and the last heads' longest tiles
// start late: a 2,048-token prompt at one block a SM then finishes at about 1.6 times the balanced
// time (51 against 32 key tiles of work a SM, simulated). Measured (H100, 2026-12-07, same call):
// Qwen3-8B's 2,048-token prompt 63.4 -> 60.1 ms, its attention 9.3 -> 6.5 ms; Gemma3-27B 217.6 ->
// 218.5 ms. The tiles then run over the grid's y, at most 65,535 (flash_args_for_tiles).
inline dim3 flash_grid(const FlashArgs& a, int64_t num_tiles, int heads_per_block) {
  const int64_t groups = a.p.heads / heads_per_block;
  if (!a.heads_fastest) return dim3(unsigned(num_tiles), unsigned(groups));
  return dim3(unsigned(groups), unsigned(num_tiles));
}

// kHeads: query heads of one kv head per block (FP4LLM_FLASH_HEADS), each on its own four warps
// and Q plane, all reading the block's one widened copy of each key tile.
template <int D, bool kFp8, int kHeads = 1>
struct PipelinedTile {
  static constexpr int kKeys = 64;                      // keys per tile, query rows per head
  static constexpr int kBlockTokens = int(kCacheBlockSlots);  // tokens per cache block
  static constexpr int kRow = D + 8;                    // 16-bit elements per row of Q, K and V
  static constexpr int kRawRow = D * (kFp8 ? 1 : 2);    // bytes of one cached key or value row
  static constexpr int kPlane = kKeys * kRow;           // elements of one of Q, K, V
  static constexpr int kTileBlocks = kKeys / kBlockTokens + 1;  // cache blocks a tile's keys can span
  static constexpr int kSmemBytes = (kHeads + 2) * kPlane * 2 + 2 * kKeys * kRawRow;  // dynamic; the entries are static
  // Blocks per SM the registers are held to: at 2 heads a block 2 (128 registers; the compiler's
  // own choice, about 170, left one block of 8 warps per SM, measured slower than 1 or 4 heads);
  // else what the compiler chose before (3 blocks at head_dim 128, which shared memory allows
  // with an FP8 cache, 2 with BF16; 4 at 64; 4 heads: 1 block).
  static constexpr int kMinBlocks = kHeads == 4 ? 1 : kHeads == 2 ? 2 : D == 64 ? 4 : 3;
  // kWgmma (FP4LLM_FLASH_WGMMA): the raw tile's 16-byte chunks of a row stored XOR-swizzled by
  // the key, so that the widening's reads of one column over consecutive keys hit distinct banks.
  static constexpr int kSwizzle = (kRawRow / 16 < 8 ? kRawRow / 16 : 8) - 1;
  // kWgmma: Q and K as wgmma's K-major core matrices without swizzle (wgmma_bf16.cuh): byte offset
  // of (row, col) for 64 rows: a k-step of 16 columns is 2,048 bytes, its two 8-column halves 128
  // bytes apart (the descriptor's K stride), 8-row groups 256 bytes apart (its M/N stride).
  static __device__ __forceinline__ int core_offset(int row, int col) {
    return (col / 16) * 2048 + ((col / 8) % 2) * 128 + (row / 8) * 256 + (row % 8) * 16 + (col % 8) * 2;
  }
  // kWgmmaPv: V as the PV product's B operand N-major (wgmma_rs_64x64x16 with kTransB): byte
  // offset of (key, dim): each key's 8 dims of a group are one 16-byte row, a group's 64 keys
  // 1,024 consecutive bytes (8-key core matrices 128 bytes apart: the descriptor's leading
  // offset), groups of 8 dims 1,024 bytes apart (its stride offset). A widening item stores one row.
  static constexpr int kValueGroupBytes = kKeys * 16;
  static __device__ __forceinline__ int value_offset(int key, int dim) {
    return (dim / 8) * kValueGroupBytes + key * 16 + (dim % 8) * 2;
  }
};

// The block-table entries of the key tile at k0 (the cache blocks of keys [k0, min(k0 + 64, last + 1))
// into `entries` by cp.async, in the caller's next commit group: requested a tile ahead of the
// copies that need them, so a tile's copies no longer wait for a block-table round trip first
// (it was two dependent L2 round trips per tile, between the widening and the arithmetic).
template <int D, bool kFp8>
__device__ __forceinline__ void request_entries(const int32_t* table, int k0, int last, int32_t* entries) {
  using T = PipelinedTile<D, kFp8>;
  const int e = int(threadIdx.x), block = k0 / T::kBlockTokens + e;
  if (e < T::kTileBlocks && block * T::kBlockTokens <= min(last, k0 + T::kKeys - 1)) copy_async4(entries + e, table + block);
}

// Keys [k0, k0 + 64) of the sequence's cache rows for kv_head into raw (K rows, then V rows),
// zero past `last`, through the tile's block-table entries in shared memory (request_entries);
// one commit group per thread, closed by the caller. kThreads (the block's size) is a constant so
// that the loop unrolls.
template <int D, bool kFp8, int kThreads, bool kWgmma = false>
__device__ __forceinline__ void request_keys(const FlashArgs& a, const int32_t* entries, int kv_head, int k0, int last,
                                             uint8_t* raw) {
  using T = PipelinedTile<D, kFp8>;
  constexpr int kChunks = T::kRawRow / 16;
  static_assert(2 * T::kKeys * kChunks % kThreads == 0);
#pragma unroll 4
  for (unsigned i = threadIdx.x; i < 2 * T::kKeys * kChunks; i += kThreads) {  // unsigned: shifts, not signed division
    const int which = i / (T::kKeys * kChunks), key = (i / kChunks) % T::kKeys, c = i % kChunks;
    const int abs_key = k0 + key;
    const bool valid = abs_key <= last;
    const uint8_t* src = which ? a.v : a.k;
    if (valid) {
      const int entry = entries[abs_key / T::kBlockTokens - k0 / T::kBlockTokens];
      src += size_t(cache_row_offset(int64_t(entry) * T::kBlockTokens + abs_key % T::kBlockTokens, kv_head,
                                     a.p.kv_heads, T::kRawRow, a.p.head_major_cache)) + size_t(c) * 16;
    }
    const int slot = kWgmma ? c ^ (key & T::kSwizzle) : c;
    copy_async16_or_zero(raw + (which * T::kKeys + key) * T::kRawRow + slot * 16, src, valid);
  }
}

// The raw tile as 16-bit K and V rows: E4M3 widened to FP16 (exact), BF16 copied; unrolled (as
// above) so that a thread's shared-memory loads overlap instead of each waiting for the last.
// kWgmma: the raw chunks are swizzled (request_keys), and K goes to wgmma's core-matrix layout,
// each quarter warp on 8 consecutive keys (distinct banks for its 16-byte stores). With an FP8
// cache a half warp reads 8-byte pieces: 8 keys x the two halves of one 16-byte chunk (the two
// quarters take column groups 2j and 2j + 1): conflict-free at head_dim 128, 2-way at 64 (its
// 64-byte rows swizzled over 4 chunks); 16 keys of one column conflicted 2-way and 4-way.
template <int D, bool kFp8>
__device__ __forceinline__ void key_major_item(unsigned i, int& key, int& c) {
  using T = PipelinedTile<D, kFp8>;
  const unsigned lane = i % 32, item = i / 32;  // i < T::kKeys * D / 8: K's items (or V's, rebased)
  constexpr unsigned kKeyBlocks = T::kKeys / 16;
  if constexpr (kFp8) {
    key = int(item % kKeyBlocks * 16 + (lane & 7) + 8 * (lane >> 4));
    c = int(2 * (item / kKeyBlocks) + ((lane >> 3) & 1)) * 8;
  } else {  // 16-byte reads: a quarter warp's 8 keys already take distinct chunks
    key = int(i % T::kKeys);
    c = int(i / T::kKeys) * 8;
  }
}

// kWgmmaPv: V too is taken keys fastest, each item's 8 values one row of V's N-major layout
// (value_offset), whose quarter warps of 8 consecutive keys store to distinct banks.
template <int D, bool kFp8, int kThreads, bool kWgmma = false, bool kWgmmaPv = false>
__device__ __forceinline__ void widen_keys(const uint8_t* raw, uint16_t* ks, uint16_t* vs) {
  using T = PipelinedTile<D, kFp8>;
  constexpr int kGroups = D / 8;  // 8 values: 8 raw bytes (FP8) or 16 (BF16), one 16-byte store
  static_assert(2 * T::kKeys * kGroups % kThreads == 0);
  static_assert(kWgmma || !kWgmmaPv, "PV on warpgroup MMAs needs the raw tile's swizzle");
#pragma unroll 4
  for (unsigned i = threadIdx.x; i < 2 * T::kKeys * kGroups; i += kThreads) {  // unsigned: shifts, not signed division
    const int which = i / (T::kKeys * kGroups);
    const bool key_major = kWgmma && (which == 0 || kWgmmaPv);  // K (and V under kWgmmaPv): keys fastest
    int key = (i / kGroups) % T::kKeys, c = (i % kGroups) * 8;
    if (key_major) key_major_item<D, kFp8>(kWgmmaPv ? i - unsigned(which) * (T::kKeys * kGroups) : i, key, c);
    const unsigned byte = c * (kFp8 ? 1 : 2);  // within the raw row
    const unsigned at = kWgmma ? ((byte / 16) ^ unsigned(key & T::kSwizzle)) * 16 + byte % 16 : byte;
    const uint8_t* src = raw + (which * T::kKeys + key) * T::kRawRow + at;
    uint4 wide;
    if constexpr (kFp8) {
      const uint2 w = *reinterpret_cast<const uint2*>(src);
      wide = make_uint4(e4m3x2_to_f16x2(w.x), e4m3x2_to_f16x2(w.x >> 16), e4m3x2_to_f16x2(w.y), e4m3x2_to_f16x2(w.y >> 16));
    } else {
      wide = *reinterpret_cast<const uint4*>(src);
    }
    if (key_major && which == 0) *reinterpret_cast<uint4*>(reinterpret_cast<uint8_t*>(ks) + T::core_offset(key, c)) = wide;
    else if (key_major) *reinterpret_cast<uint4*>(reinterpret_cast<uint8_t*>(vs) + T::value_offset(key, c)) = wide;
    else *reinterpret_cast<uint4*>((which ? vs : ks) + key * T::kRow + c) = wide;
  }
}

// One query element (row r, dim d) of plane h in the layout the scores read.
template <int D, bool kFp8, bool kWgmma>
__device__ __forceinline__ void store_query(uint16_t* qs, int h, int r, int d, float x) {
  using T = PipelinedTile<D, kFp8>;
  const auto bits = uint16_t(pack2<kFp8>(x, 0.0f) & 0xFFFFu);
  if constexpr (kWgmma) *reinterpret_cast<uint16_t*>(reinterpret_cast<uint8_t*>(qs + h * T::kPlane) + T::core_offset(r, d)) = bits;
  else qs[h * T::kPlane + r * T::kRow + d] = bits;
}

// The same rows from the raw q|k|v products (a.rope): one warp a (row, head), normalised with the
// q gains and rotated at the row's position with the rope kernel's arithmetic (rope_cache_warps_kernel),
// so that a prompt's queries are read once, here, instead of read, rotated, written as float32 and
// read again. Lane l holds the pairs (l + 32j, l + 32j + D/2).
template <int D, bool kFp8, int kHeads, bool kWgmma>
__device__ __forceinline__ void stage_roped_queries(const FlashArgs& a, const QueryTile& tile, int head, uint16_t* qs) {
  using T = PipelinedTile<D, kFp8>;
  constexpr int kWarps = 4 * kHeads, kPairs = D / 64, kHalf = D / 2;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const size_t width = size_t(a.p.heads + 2 * a.p.kv_heads) * D;
  for (int rh = warp; rh < kHeads * T::kKeys; rh += kWarps) {  // warp-uniform: the reduction below
    const int h = rh / T::kKeys, r = rh % T::kKeys;
    float x[kPairs] = {}, y[kPairs] = {};
    if (r < tile.count) {
      const int token = tile.first_token + r;
      const float* src = a.rope.qkv + size_t(token) * width + size_t(head + h) * D;
#pragma unroll
      for (int j = 0; j < kPairs; ++j) x[j] = src[lane + 32 * j], y[j] = src[lane + 32 * j + kHalf];
      warp_norm_rope<D>(x, y, a.rope.q_norm, a.rope.eps, a.rope.one_plus, a.positions[token], a.rope.inv_freq);
    }
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      store_query<D, kFp8, kWgmma>(qs, h, r, lane + 32 * j, x[j]);
      store_query<D, kFp8, kWgmma>(qs, h, r, lane + 32 * j + kHalf, y[j]);
    }
  }
}

// The tile's query rows (float32 [token][head][D]) of heads [head, head + kHeads) as 16-bit
// rows, one plane per head, zero past its count. Unrolled over the block's constant size (as
// request_keys): 32 loads per thread at head_dim 128, each stored before the next was requested
// when the loop ran one iteration at a time.
// kRope: the queries from a.rope (stage_roped_queries) instead of a.q; a template parameter, not
// a branch on a.rope.qkv, so that the kernels without it keep their register allocation (a branch
// cost the 4-head kernel 44 bytes of spill at head_dim 128).
template <int D, bool kFp8, int kHeads, bool kWgmma = false, bool kRope = false>
__device__ __forceinline__ void stage_queries(const FlashArgs& a, const QueryTile& tile, int head, uint16_t* qs) {
  if constexpr (kRope) return stage_roped_queries<D, kFp8, kHeads, kWgmma>(a, tile, head, qs);
  using T = PipelinedTile<D, kFp8>;
  constexpr int kThreads = 128 * kHeads;
  static_assert(kHeads * T::kKeys * (D / 2) % kThreads == 0);
#pragma unroll 4
  for (int i = threadIdx.x; i < kHeads * T::kKeys * (D / 2); i += kThreads) {
    const int h = i / (T::kKeys * (D / 2)), r = (i / (D / 2)) % T::kKeys, d = 2 * (i % (D / 2));
    float2 x = make_float2(0.0f, 0.0f);
    if (r < tile.count)
      x = *reinterpret_cast<const float2*>(a.q + (size_t(tile.first_token + r) * a.p.heads + head + h) * D + d);
    if constexpr (kWgmma)  // wgmma's layout (the plane is larger than it needs)
      *reinterpret_cast<uint32_t*>(reinterpret_cast<uint8_t*>(qs + h * T::kPlane) + T::core_offset(r, d)) = pack2<kFp8>(x.x, x.y);
    else
      *reinterpret_cast<uint32_t*>(qs + h * T::kPlane + r * T::kRow + d) = pack2<kFp8>(x.x, x.y);
  }
}

// The tile's scores Q K^T on warpgroup MMAs (kWgmma, sm_90): the warpgroup's 64 query rows
// against 64 keys, head_dim / 16 instructions with both operands in shared memory, instead of
// each warp's ldmatrix + mma.sync chains (128 per warp and tile with PV; the MMA dependency
// chains were the largest stall, docs/PERFORMANCE.md). The result is in the mma.sync C layout
// per warp, as the softmax takes it.
template <int D, bool kFp8>
__device__ __forceinline__ void wgmma_scores(const uint16_t* qs, const uint16_t* ks, float (&s)[8][4]) {
  const uint64_t q_desc = wgmma_descriptor(qs, 128, 256), k_desc = wgmma_descriptor(ks, 128, 256);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)  // a k-step is 2,048 bytes: 128 in the descriptor's units
    wgmma_ss_64x64x16<kFp8>(s, q_desc + uint64_t(kk * 128), k_desc + uint64_t(kk * 128), kk > 0);
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_pin(s);
}

// The tile's O += P V on warpgroup MMAs (kWgmmaPv, sm_90): P (the warpgroup's 64 query rows
// against the tile's 64 keys) from the softmax's registers as the A operand, V from shared memory
// N-major as B, per 64 dims 4 k-steps of 16 keys, instead of each warp's ldmatrix.trans +
// mma.sync chains (64 MMAs per warp and tile at head_dim 128). Waited for before the next tile
// touches O (the softmax rescales it) or V.
template <int D, bool kFp8>
__device__ __forceinline__ void wgmma_values(const uint32_t (&pa)[4][4], const uint16_t* vs, float (&o)[D / 8][4]) {
  using T = PipelinedTile<D, kFp8>;
  static_assert(T::kKeys == 64, "4 k-steps of 16 keys");
  const uint64_t v_desc = wgmma_descriptor(vs, 128, T::kValueGroupBytes);  // 8 keys on; 8 dims on
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {  // a k-step is 2 core matrices of 8 keys: 256 bytes, 16 units
    const uint64_t step = v_desc + uint64_t(kk * 16);
    wgmma_rs_64x64x16<kFp8, true, 0>(o, pa[kk], step);
    if constexpr (D == 128)  // dims 64-127: 8 groups of 8 dims on
      wgmma_rs_64x64x16<kFp8, true, 8>(o, pa[kk], step + uint64_t(8 * T::kValueGroupBytes / 16));
  }
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_pin(o);
}

// What a thread needs of its warp's 16 query rows for each key tile.
struct WarpRows {
  int t;                   // lane % 4 (the C fragment's column pair)
  int row0;                // this thread's rows: row0 and row0 + 8 of the tile
  int pos_r[2];            // their positions
  int pos0, last, window;  // the tile's first and last positions, the sliding window (0: none)
  bool has_rows;           // whether the warp's rows hold any of the tile's tokens
  float scale_log2;
  // ldmatrix row addresses of this lane: A (Q) rows of the warp, B (K) keys, and V's keys.
  int a_row, a_col, k_key, k_col, v_key, v_col;
};

__device__ __forceinline__ WarpRows warp_rows(const FlashArgs& a, const QueryTile& tile) {
  WarpRows r;
  const int lane = int(threadIdx.x) % 32, warp = (int(threadIdx.x) % 128) / 32;  // warp within its head's warpgroup
  r.t = lane % 4;
  r.row0 = warp * 16 + lane / 4;
  r.pos0 = a.positions[tile.first_token], r.last = r.pos0 + tile.count - 1;
  r.pos_r[0] = r.pos0 + r.row0, r.pos_r[1] = r.pos0 + r.row0 + 8;
  r.window = int(a.p.window);
  r.has_rows = warp * 16 < tile.count;
  r.scale_log2 = score_scale_log2(a.p.scale, a.p.k_scale);
  r.a_row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, r.a_col = (lane >> 4) * 8;
  r.k_key = (lane & 7) + (lane >> 4) * 8, r.k_col = ((lane >> 3) & 1) * 8;
  r.v_key = (lane & 7) + ((lane >> 3) & 1) * 8, r.v_col = (lane >> 4) * 8;
  return r;
}

// What a thread of a flash block works on: its block's query tile and heads (flash_grid), the
// thread's own head (warps 4h .. 4h + 3 take first_head + h, with Q plane h), the sequence's
// block table, its warp's rows and the first key it reads.
struct FlashBlock {
  QueryTile tile;
  int first_head, kv_head, head, plane;
  const int32_t* table;
  WarpRows rows;
  int lo;  // the first key: 0, or the window's start for the tile's first row
};

__device__ __forceinline__ FlashBlock flash_block(const FlashArgs& a, int heads_per_block) {
  FlashBlock b;
  b.tile = a.tiles[a.heads_fastest ? blockIdx.y : blockIdx.x];
  b.first_head = int(a.heads_fastest ? blockIdx.x : blockIdx.y) * heads_per_block;
  b.kv_head = b.first_head / int(a.p.heads / a.p.kv_heads);
  b.plane = int(threadIdx.x) / 128;
  b.head = b.first_head + b.plane;
  b.table = a.block_tables + size_t(a.token_seq[b.tile.first_token]) * a.p.max_blocks;
  b.rows = warp_rows(a, b.tile);
  b.lo = b.rows.window > 0 ? max(0, b.rows.pos0 - b.rows.window + 1) : 0;
  return b;
}

// One key tile at k0 for the thread's rows: scores Q K^T, the online softmax, O += P V, from Q,
// K and V in shared memory (16-bit). Under kWgmma the whole warpgroup calls it, rows or not (its
// MMAs are the warpgroup's); without, a warp without rows skips it.
template <int D, bool kFp8, bool kWgmma, bool kWgmmaPv>
__device__ __forceinline__ void attend_tile(const FlashArgs& a, const WarpRows& r, const uint16_t* qs, const uint16_t* ks,
                                            const uint16_t* vs, int k0, float (&m)[2], float (&l)[2], float (&o)[D / 8][4]) {
  using T = PipelinedTile<D, kFp8>;
  constexpr int kRow = T::kRow, kKeys = T::kKeys;
  float s[kKeys / 8][4];
  if constexpr (kWgmma) {
    wgmma_scores<D, kFp8>(qs, ks, s);  // the whole warpgroup, rows or not
    if (!r.has_rows && !kWgmmaPv) return;
  } else {
    if (!r.has_rows) return;
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t qa[4];
      ldmatrix_x4(qa, qs + r.a_row * kRow + kk * 16 + r.a_col);
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {  // key n-tiles 2np and 2np + 1
        uint32_t kb[4];
        ldmatrix_x4(kb, ks + (np * 16 + r.k_key) * kRow + kk * 16 + r.k_col);
        mma16816<kFp8>(s[2 * np], qa, kb[0], kb[1]);
        mma16816<kFp8>(s[2 * np + 1], qa, kb[2], kb[3]);
      }
    }
  }
  uint32_t pa[kKeys / 16][4] = {};  // P as the A operand of PV (zero in a warp without rows)
  if (r.has_rows) {  // always, but under kWgmmaPv
    const bool mask = a.mask_every_tile || tile_needs_mask(k0, kKeys, r.pos0, r.last, r.window);
    softmax_tile<kKeys, D, kFp8>(mask, s, k0, r.t, r.pos_r, r.window, r.scale_log2, m, l, o, pa);
  }
  if constexpr (kWgmmaPv) {
    wgmma_values<D, kFp8>(pa, vs, o);  // the whole warpgroup, rows or not
  } else {
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp)  // value dims n-tiles 2dp and 2dp + 1
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, vs + (kk * 16 + r.v_key) * kRow + dp * 16 + r.v_col);
        mma16816<kFp8>(o[2 * dp], pa[kk], vb[0], vb[1]);
        mma16816<kFp8>(o[2 * dp + 1], pa[kk], vb[2], vb[3]);
      }
  }
}

// Grid: flash_grid; 128 x kHeads threads. kRope: the queries' norm and RoPE too (a.rope).
template <int D, bool kFp8, int kHeads = 1, bool kWgmma = false, bool kWgmmaPv = false, bool kRope = false>
__global__ void __launch_bounds__(128 * kHeads, (PipelinedTile<D, kFp8, kHeads>::kMinBlocks)) flash_pipelined_kernel(FlashArgs a) {
  using T = PipelinedTile<D, kFp8, kHeads>;
  constexpr int kKeys = T::kKeys;
  extern __shared__ __align__(16) uint8_t smem[];
  uint16_t* const q_planes = reinterpret_cast<uint16_t*>(smem);
  uint16_t* ks = q_planes + kHeads * T::kPlane;
  uint16_t* vs = ks + T::kPlane;
  uint8_t* raw = reinterpret_cast<uint8_t*>(vs + T::kPlane);
  __shared__ int32_t entries[2 * T::kTileBlocks];  // tile j's block-table entries in buffer j % 2

  const FlashBlock b = flash_block(a, kHeads);
  const WarpRows& r = b.rows;
  const int last = r.last, lo = b.lo;
  const uint16_t* qs = q_planes + b.plane * T::kPlane;

  // The first tile's entries are waited for here (one round trip, as before); the second's
  // travel with the first tile's rows.
  request_entries<D, kFp8>(b.table, lo, last, entries);
  copy_async_commit();
  copy_async_wait<0>();
  __syncthreads();
  if (lo + kKeys <= last) request_entries<D, kFp8>(b.table, lo + kKeys, last, entries + T::kTileBlocks);
  request_keys<D, kFp8, 128 * kHeads, kWgmma>(a, entries, b.kv_head, lo, last, raw);
  copy_async_commit();
  stage_queries<D, kFp8, kHeads, kWgmma, kRope>(a, b.tile, b.first_head, q_planes);
  if constexpr (kWgmma) fence_shared_for_wgmma();  // Q is read by the MMAs after the loop's first barrier

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;

  for (int k0 = lo; k0 <= last; k0 += kKeys) {
    const int j = (k0 - lo) / kKeys;  // the tile's index: its entries are in buffer j % 2
    copy_async_wait<0>();
    // This tile's raw rows and the next tile's entries have landed; the previous tile's K and V
    // are no longer read.
    __syncthreads();
    widen_keys<D, kFp8, 128 * kHeads, kWgmma, kWgmmaPv>(raw, ks, vs);
    if constexpr (kWgmma) fence_shared_for_wgmma();
    __syncthreads();  // K and V hold the tile; raw is free for the next one
    if (k0 + kKeys <= last) {
      // Tile j + 2's entries into tile j's buffer, whose last reader (the copies of tile j) came
      // before the barriers above.
      if (k0 + 2 * kKeys <= last) request_entries<D, kFp8>(b.table, k0 + 2 * kKeys, last, entries + (j % 2) * T::kTileBlocks);
      request_keys<D, kFp8, 128 * kHeads, kWgmma>(a, entries + ((j + 1) % 2) * T::kTileBlocks, b.kv_head, k0 + kKeys, last, raw);
      copy_async_commit();
    }
    attend_tile<D, kFp8, kWgmma, kWgmmaPv>(a, r, qs, ks, vs, k0, m, l, o);
  }
  if (!r.has_rows) return;
  store_rows<D>(o, l, r.row0, r.t, b.tile.first_token, b.tile.count, a.p.heads, b.head, a.p.v_scale, a.out);
}

}  // namespace

}  // namespace fp4llm::cuda
