// Decode attention on tensor cores, written against the instruction bound that held the CUDA-core
// kernel (paged_attention.cu) at about 4,400 instructions per warp per step. Same contract as paged_attention for
// head_dim 64/128 and query groups up to 16: QK^T and PV on m16n8k16 MMAs with the query group
// (padded to 16) as the M dimension. K's head dimension is permuted so that lane quarter t owns
// dims [t*D/4, (t+1)*D/4) of its key (one contiguous load), and PV's output columns are permuted
// so that column g of n-tile j is dim g*D/8 + j (16 contiguous bytes of each value row per lane).
#include <algorithm>
#include <string>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cooperative_groups.h>

#include "backend/cuda/attention_rope.cuh"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/dynamic_smem.cuh"
#include "backend/cuda/kv_cache_load.cuh"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/mma_16bit.cuh"
#include "backend/cuda/paged_attention.hpp"
#include "backend/cuda/split_kv.cuh"

namespace fp4llm::cuda {

namespace {

// Warps per block, each taking every kWarps-th cache block of the split. 8 (FP4LLM_ATTN_WARPS=8,
// FP8 cache, without clusters or rope) measured no faster with the padded merge either (H100,
// 2026-12-06, same call: Qwen3-8B 349.9 against 346.8 tok/s at batch 1, Qwen3-30B-A3B 368.9
// against 372.6, the 32k attention 1,703 against 1,705 us a step): at 194 registers one block of
// 8 warps fills an SM, as two of 4 do.
constexpr int kWarps = 4;
constexpr int kBlockSize = int(kCacheBlockSlots);  // tokens per cache block

// Where the warp merge keeps element d of row `row` (warp w's head h: row w * group + h) in shared
// memory. A lane holds its outputs in the PV permutation (column c = d / (D/8) of n-tile d % (D/8)),
// so with rows of D floats every lane of a store hits one bank: 16-way conflicts at a query group
// of 4, 32-way at 8 and 16 (64 stores a lane). Padded, columns D/8 + 4 floats apart and rows 8
// such columns + 1, the stores are conflict-free for every group and the merge's reads 2-way:
// batch 1 Qwen3-30B-A3B 373.2 against 361.1 tok/s, Qwen3-8B 342.7 against 338.9 (H100,
// 2026-12-06, same call). FP4LLM_ATTN_PADDED_MERGE=0 keeps rows of D floats.
template <int D>
struct MergeLayout {
  int column_stride = D / 8, row_stride = D;
  static MergeLayout padded() { return {D / 8 + 4, 8 * (D / 8 + 4) + 1}; }
  // mma_decode_key_rows_kernel's: a store's lane (g, t) holds element g of rows 2t or 2t+1, so
  // columns D/8 + 1 floats apart and rows 8 such columns + 4 make its stores conflict-free for
  // groups up to 8 and the merge's reads 2-way (brute-force count over the banks).
  static MergeLayout key_rows() { return {D / 8 + 1, 8 * (D / 8 + 1) + 4}; }
  // Position n of output column c (the PV permutation's terms), or element d of the row.
  __device__ __forceinline__ int at(int row, int c, int n) const { return row * row_stride + c * column_stride + n; }
  __device__ __forceinline__ int at(int row, int d) const { return at(row, d / (D / 8), d % (D / 8)); }
  size_t floats(int rows) const { return size_t(rows) * size_t(row_stride); }
};

struct Args : AttentionInputs {
  AttentionParams p;
  AttentionWorkspace ws;
  __nv_bfloat16* out;
  RopeInAttentionArgs rope;  // kRope: q is read raw from rope.qkv (attention_rope.cuh)
  int merge_column_stride = 0, merge_row_stride = 0;  // MergeLayout<D>, set by launch_with_layout
};

// kWords consecutive 32-bit words (2 or a multiple of 4), zero when !valid.
template <int kWords>
__device__ __forceinline__ void load_row(const uint8_t* src, bool valid, uint32_t (&w)[kWords]) {
  if constexpr (kWords == 2) {
    const uint2 v = valid ? *reinterpret_cast<const uint2*>(src) : make_uint2(0, 0);
    w[0] = v.x, w[1] = v.y;
  } else {
#pragma unroll
    for (int i = 0; i < kWords; i += 4) {
      const uint4 v = valid ? *reinterpret_cast<const uint4*>(src + 4 * i) : make_uint4(0, 0, 0, 0);
      w[i] = v.x, w[i + 1] = v.y, w[i + 2] = v.z, w[i + 3] = v.w;
    }
  }
}

// The softmax merge of N partial results of one head, maxima m and sums l: factor f[i] =
// exp(m[i] - max), 0 for a part without keys (m[i] = -inf); returns (max, total). The max is -inf
// only when no part had a key.
template <int N>
__device__ __forceinline__ float2 merge_weights(const float (&m)[N], const float (&l)[N], float (&f)[N]) {
  float mx = -INFINITY, sum = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) mx = fmaxf(mx, m[i]);
#pragma unroll
  for (int i = 0; i < N; ++i) {
    f[i] = m[i] == -INFINITY ? 0.0f : __expf(m[i] - mx);
    sum += l[i] * f[i];
  }
  return make_float2(mx, sum);
}

// A cluster's C block results of one split (each block's o in warp 0's rows of o_s, relative to its
// maxima mx_s, with sums sum_s; mx_s is -inf for a block without keys) merged through
// distributed shared memory: block `rank` takes every C-th element and stores it as the split's
// result. Every block waits at both cluster barriers, so none leaves while another reads it.
template <int D, int C>
__device__ __forceinline__ void merge_cluster(const Args& a, const MergeLayout<D>& layout, int tok, int kv_head, int group,
                                              int split, int rank, int active, float* o_s, float* mx_s, float* sum_s) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();  // clusters are sm_90's; the launch takes C = 1 before it
#else
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  const float* o_r[C];
  const float* mx_r[C];
  const float* sum_r[C];
#pragma unroll
  for (int r = 0; r < C; ++r) {
    o_r[r] = cluster.map_shared_rank(o_s, r);
    mx_r[r] = cluster.map_shared_rank(mx_s, r);
    sum_r[r] = cluster.map_shared_rank(sum_s, r);
  }
  // Each head's cluster maximum, total and per-block factors, once (as the block merge does).
  __shared__ float factor[C][16], cluster_mx[16], cluster_sum[16];
  if (int(threadIdx.x) < group) {
    const int h = int(threadIdx.x);
    float m[C], l[C], f[C];
#pragma unroll
    for (int r = 0; r < C; ++r) m[r] = mx_r[r][h], l[r] = sum_r[r][h];
    const float2 merged = merge_weights<C>(m, l, f);  // finite maximum: some block had a key
#pragma unroll
    for (int r = 0; r < C; ++r) factor[r][h] = f[r];
    cluster_mx[h] = merged.x, cluster_sum[h] = merged.y;
  }
  __syncthreads();
  for (int i = rank * int(blockDim.x) + int(threadIdx.x); i < group * D; i += C * int(blockDim.x)) {
    const int h = i / D, d = i % D;
    float acc = 0.0f;
#pragma unroll
    for (int r = 0; r < C; ++r) acc += o_r[r][layout.at(h, d)] * factor[r][h];
    const float mx = cluster_mx[h], sum = cluster_sum[h];
    store_split_result<D>(a.p, a.ws, a.out, tok, kv_head * group + h, d, split, active, acc, mx, sum);
  }
  cluster.sync();
#endif
}

// This lane's K and V words of one cache block: K rows of keys g and g+8 (dims [t*D/4, (t+1)*D/4)
// each, the QK^T permutation), V rows of keys 2t, 2t+1, 8+2t, 9+2t (dims [g*D/8, (g+1)*D/8) each,
// the PV permutation).
template <int D, bool kFp8>
struct CacheBlockWords {
  static constexpr int kElem = kFp8 ? 1 : 2;
  static constexpr int kKeyWords = D / 4 * kElem / 4, kValWords = D / 8 * kElem / 4;
  uint32_t kw[2][kKeyWords];
  uint32_t vw[4][kValWords];
};

// Cache block b (logical) of the token's sequence, held by `entry` in the cache. Keys outside
// [begin, end) read as zero: their slots may hold anything, and 0 * NaN would poison the sum.
template <int D, bool kFp8>
__device__ __forceinline__ void load_cache_block(const Args& a, int kv_head, int begin, int end, int b, int entry,
                                                 CacheBlockWords<D, kFp8>& r) {
  using Words = CacheBlockWords<D, kFp8>;
  const int lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  constexpr int kRowBytes = D * Words::kElem;
  const size_t row_stride = size_t(cache_slot_stride(a.p.kv_heads, kRowBytes, a.p.head_major_cache));  // bytes
  const size_t base = size_t(cache_row_offset(int64_t(entry) * kBlockSize, kv_head, a.p.kv_heads, kRowBytes,
                                              a.p.head_major_cache));
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int key = b * kBlockSize + 8 * j + g;
    load_row<Words::kKeyWords>(a.k + base + (8 * j + g) * row_stride + D / 4 * t * Words::kElem,
                               key >= begin && key < end, r.kw[j]);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int rel = (i >> 1) * 8 + 2 * t + (i & 1), key = b * kBlockSize + rel;
    load_row<Words::kValWords>(a.v + base + rel * row_stride + D / 8 * g * Words::kElem, key >= begin && key < end,
                               r.vw[i]);
  }
}

// Element n of two value rows' words (this lane's slice of each) as an MMA operand pair: the
// first row's in the low half.
template <bool kFp8, int kWords>
__device__ __forceinline__ uint32_t value_pair(const uint32_t (&lo_row)[kWords], const uint32_t (&hi_row)[kWords],
                                               int n) {
  if constexpr (kFp8) {
    const uint32_t pair = __byte_perm(lo_row[n / 4], hi_row[n / 4], n % 4 < 2 ? 0x5140u : 0x7362u);
    return e4m3x2_to_f16x2(n % 2 ? pair >> 16 : pair);
  } else {
    return __byte_perm(lo_row[n / 2], hi_row[n / 2], n % 2 ? 0x7632u : 0x5410u);
  }
}

// Shared memory of a decode block that takes the rope kernel's work (kOn): the angles, and the
// token's new key and value rows as the cache holds them.
template <int D, bool kFp8, bool kOn>
struct NewRowShared {
  static constexpr int kBytes = kOn ? D * (kFp8 ? 1 : 2) : 16;
  float cos[kOn ? D / 2 : 1], sin[kOn ? D / 2 : 1];
  __align__(16) uint8_t key[kBytes], value[kBytes];
};

// The rope kernel's work in a decode block, after its first cache blocks were requested: waits
// for the qkv product, then q's fragments (rows g and g+8 of the group, the A layout of
// mma_decode_kernel) normalised, rotated and scaled; the writer block (whose key range ends at
// the token) stores the new key and value into the cache and keeps them in `rows`.
// kRows: the A layout's rows computed (1: rows g only, for the key-rows kernel's groups up to 8).
template <int D, bool kFp8, int kRows = 2>
__device__ __forceinline__ void rope_in_block(const Args& a, int tok, int kv_head, int group, int pos, float qscale,
                                              bool writer, NewRowShared<D, kFp8, true>& rows,
                                              uint32_t (&qa)[D / 16][4]) {
  const int warp = int(threadIdx.x) / 32;
  wait_for_producer();  // the q|k|v rows are the qkv product's
  const size_t width = size_t(a.p.heads + 2 * a.p.kv_heads) * D;
  const float* row = a.rope.qkv + size_t(tok) * width;
  rope_angles<D>(a.rope, pos, rows.cos, rows.sin);
  __syncthreads();
  const auto pack = [](float lo, float hi) { return pack2<kFp8>(lo, hi); };
  roped_q_fragments<D, decltype(pack), kRows>(row + size_t(kv_head) * group * D, a.rope, group, qscale, rows.cos,
                                              rows.sin, pack, qa);
  if (writer && warp < 2) {  // warp 0 the key, warp 1 the value
    const float* k_row = row + size_t(a.p.heads + kv_head) * D;
    const size_t cache_at = size_t(cache_row_offset(a.rope.slots[tok], kv_head, a.p.kv_heads, D, a.p.head_major_cache));
    warp_store_new_row<D>(warp == 0, a.rope, a.p, k_row, cache_at, rows.cos, rows.sin,
                          warp == 0 ? rows.key : rows.value);
  }
  __syncthreads();
}

// The token's own key and value rows in a cache block whose first key is `first_key` (requested
// before the writer stored them), from `rows`: the words load_cache_block gives this lane.
template <int D, bool kFp8>
__device__ __forceinline__ void patch_new_rows(CacheBlockWords<D, kFp8>& r, int first_key, int pos,
                                               const NewRowShared<D, kFp8, true>& rows) {
  using Words = CacheBlockWords<D, kFp8>;
  const int lane = int(threadIdx.x) % 32, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < 2; ++j)
    if (first_key + 8 * j + g == pos)
#pragma unroll
      for (int w = 0; w < Words::kKeyWords; ++w)
        r.kw[j][w] = reinterpret_cast<const uint32_t*>(rows.key + D / 4 * t * Words::kElem)[w];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (first_key + (i >> 1) * 8 + 2 * t + (i & 1) == pos)
#pragma unroll
      for (int w = 0; w < Words::kValWords; ++w)
        r.vw[i][w] = reinterpret_cast<const uint32_t*>(rows.value + D / 8 * g * Words::kElem)[w];
}

// Each warp's softmax maxima and sums per query head of the group, and what the block merge
// derives from them.
template <int W>
struct WarpResults {
  float m[W][16], l[W][16], factor[W][16], mx[16], sum[16];
};

// Which block this is: its token, kv head and query group, its split, its rank in the split's
// cluster, and the splits that hold keys.
struct BlockPlace {
  int tok, kv_head, group, split, rank, active;
};

// A decode block's place (grid x: token, y: kv head, z: split x C + rank in the split's cluster),
// its token's position and block table, and its split's keys [begin, end).
struct DecodeBlock {
  BlockPlace at;
  int pos, begin, end;
  const int32_t* table;
};

// False when the block's split holds no keys (the whole block returns).
template <int C>
__device__ __forceinline__ bool locate_block(const Args& a, DecodeBlock& b) {
  b.at.tok = blockIdx.x, b.at.kv_head = blockIdx.y, b.at.split = int(blockIdx.z) / C, b.at.rank = int(blockIdx.z) % C;
  b.at.group = int(a.p.heads / a.p.kv_heads);
  b.pos = a.positions[b.at.tok];
  KeyRange range;
  if (!split_key_range(a.p, b.pos, b.at.split, int(a.p.min_split_keys), range)) return false;
  b.begin = range.begin, b.end = range.end, b.at.active = range.active;
  b.table = a.block_tables + size_t(a.token_seq[b.at.tok]) * a.p.max_blocks;
  return true;
}

// A warp's cache blocks of its split, every kStride-th from its lead block to `last`: latency, not
// bandwidth, bounds a short context, so the next kAhead blocks' keys and values are requested
// before this block's arithmetic, and the block-table entry after those too. words[0]: the block
// computed now.
template <int D, bool kFp8, int kAhead, int kStride>
struct CacheBlockRing {
  CacheBlockWords<D, kFp8> words[kAhead + 1];
  int next_entry = 0;
  // The first kAhead blocks from `lead` on, but block `skip` (-1: none).
  __device__ __forceinline__ void start(const Args& a, const DecodeBlock& blk, int lead, int last, int skip = -1) {
#pragma unroll
    for (int i = 0; i < kAhead; ++i)
      if (lead + i * kStride <= last && lead + i * kStride != skip)
        load_cache_block<D, kFp8>(a, blk.at.kv_head, blk.begin, blk.end, lead + i * kStride,
                                  blk.table[lead + i * kStride], words[i]);
    if (lead + kAhead * kStride <= last) next_entry = blk.table[lead + kAhead * kStride];
  }
  // Before block b's arithmetic: block b + kAhead * kStride requested.
  __device__ __forceinline__ void request_ahead(const Args& a, const DecodeBlock& blk, int b, int last) {
    const int ahead = b + kAhead * kStride;
    if (ahead <= last) {
      load_cache_block<D, kFp8>(a, blk.at.kv_head, blk.begin, blk.end, ahead, next_entry, words[kAhead]);
      if (ahead + kStride <= last) next_entry = blk.table[ahead + kStride];
    }
  }
  // Block `skip` where start() left it out, once it may be read: start() runs before the wait for
  // the rope kernel (cache_blocks_before_wait), and the block holding the token's own key is that
  // kernel's write. Not requested before the wait at all, so that no line of it sits in L1 from
  // before the write. A decode step writes no other key its tokens read.
  __device__ __forceinline__ void load_skipped(const Args& a, const DecodeBlock& blk, int lead, int last, int skip) {
#pragma unroll
    for (int i = 0; i < kAhead; ++i)
      if (lead + i * kStride == skip && skip <= last)
        load_cache_block<D, kFp8>(a, blk.at.kv_head, blk.begin, blk.end, skip, blk.table[skip], words[i]);
  }
  // After block b's arithmetic.
  __device__ __forceinline__ void advance() {
#pragma unroll
    for (int i = 0; i < kAhead; ++i) words[i] = words[i + 1];
  }
};

// The end of both decode kernels: the W warps' results (m and l in `r`, outputs in o_s as rows
// warp * group + head of `layout`, all written before the call) merged into the block's, then
// stored (or merged with the cluster's and the other splits'). Each head's maximum, total and
// per-warp factors are computed once, by one thread, so that an output costs W multiply-adds
// and no exponential.
template <int D, int C, int W>
__device__ __forceinline__ void merge_warps_and_store(const Args& a, const MergeLayout<D>& layout, WarpResults<W>& r,
                                                      float* o_s, const BlockPlace& at) {
  const int group = at.group;
  __syncthreads();
  if (int(threadIdx.x) < group) {
    const int h = threadIdx.x;
    float m[W], l[W], f[W];
#pragma unroll
    for (int w = 0; w < W; ++w) m[w] = r.m[w][h], l[w] = r.l[w][h];
    const float2 merged = merge_weights<W>(m, l, f);  // -inf only in a cluster block without keys
#pragma unroll
    for (int w = 0; w < W; ++w) r.factor[w][h] = f[w];
    r.mx[h] = merged.x, r.sum[h] = merged.y;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float acc = 0.0f;
#pragma unroll
    for (int w = 0; w < W; ++w) acc += o_s[layout.at(w * group + h, d)] * r.factor[w][h];
    if constexpr (C == 1) {
      store_split_result<D>(a.p, a.ws, a.out, at.tok, at.kv_head * group + h, d, at.split, at.active, acc, r.mx[h],
                            r.sum[h]);
    } else {
      o_s[layout.at(h, d)] = acc;  // warp 0's slot of this element, read only by this thread above
    }
  }
  if constexpr (C > 1)
    merge_cluster<D, C>(a, layout, at.tok, at.kv_head, group, at.split, at.rank, at.active, o_s, r.mx, r.sum);
  merge_splits_if_last<D>(a.p, a.ws, a.out, at.tok, at.kv_head, group, at.active, C);
}

// kAhead: cache blocks each warp requests ahead of the one it computes. An FP8 block is half the
// bytes of a BF16 one, so at equal blocks ahead FP8 keeps half the bytes in flight; at 32k keys
// the FP8 step costs 0.78 of the BF16 one instead of about half (H200, docs/PERFORMANCE.md).
// FP4LLM_ATTN_FP8_AHEAD=2 or 3 gives FP8 two or three blocks ahead. With the key rows and the
// merge by rows the 32k FP8 attention waits on its cache loads (Nsight Compute, H100: half the
// stall samples at the first use of the block's words, DRAM at 61%, 8 warps a SM), yet 2 and 3
// ahead (178 and 210 registers at head_dim 128, still 2 blocks a SM) were no faster (H200,
// 2026-12-06: 1,093 / 1,116 / 1,170 us a step for 1 / 2 / 3), nor with the loop unrolled over the
// ring's slots so that no words move between registers (H100: 1,249 / 1,257 / 1,258; reverted).
// kRope: the block also takes the rope kernel's work (attention_rope.cuh).
// C > 1 (FP4LLM_ATTN_CLUSTER, sm_90; off, see attention_cluster): each split is a cluster of C
// blocks along z whose C x kWarps warps take every (C x kWarps)-th cache block of the split, merged through
// distributed shared memory. At a short context one split holds every key, and with C = 1 its four
// warps each take several cache blocks in turn (about 450 instructions each at 10 cycles an
// instruction, one warp per scheduler: 11-13 us for ~130 keys on the H100, docs/PERFORMANCE.md
// fifteenth session); with C = 8 each warp takes at most one up to 512 keys, and the merge costs
// shared-memory reads, not the global round trips of a split merge.
// W: warps per block (kWarps, or 8 under FP4LLM_ATTN_WARPS=8).
template <int D, bool kFp8, int kAhead = 1, bool kRope = false, int C = 1, int W = kWarps>
__global__ void __launch_bounds__(W * 32) mma_decode_kernel(Args a) {
  static_assert(C == 1 || !kRope, "the rope's writer is one block of the last split");
  let_dependents_start();  // the next kernel may be scheduled now (dependent_launch.cuh)
  // Launched early (FP4LLM_PDL=all), the inputs are the previous kernel's. With kRope no earlier
  // kernel of the step writes this layer's cache (the block's own new row is patched in below), so
  // the first cache blocks are requested before the wait, during the qkv product's tail.
  if constexpr (!kRope) wait_for_producer();
  constexpr int kSteps = D / 16;          // k-steps of QK^T
  constexpr int kTiles = D / 8;           // output n-tiles of PV
  constexpr int kQuarter = D / 4;         // key dims per lane quarter (QK^T permutation)
  DecodeBlock block;
  if (!locate_block<C>(a, block)) return;
  const int tok = block.at.tok, kv_head = block.at.kv_head, group = block.at.group;
  const int pos = block.pos, begin = block.begin, end = block.end;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane >> 2, t = lane & 3;
  // This warp's first cache block of the split and the stride between its blocks.
  constexpr int kStride = C * W;
  const int lead = block.at.rank * W + warp;

  // q fragments (rows g and g+8 of the group, zero past it), softmax and K scales folded in.
  const float qscale = a.p.scale * a.p.k_scale;
  uint32_t qa[kSteps][4];
  if constexpr (!kRope) {
    const float* q = a.q + (size_t(tok) * a.p.heads + size_t(kv_head) * group) * D;
#pragma unroll
    for (int s = 0; s < kSteps; ++s)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int head = g + 8 * r, d = kQuarter * t + 4 * s;
        const bool ok = head < group;
        const float* qh = q + head * D + d;
        qa[s][r] = ok ? pack2<kFp8>(qh[0] * qscale, qh[1] * qscale) : 0u;
        qa[s][2 + r] = ok ? pack2<kFp8>(qh[2] * qscale, qh[3] * qscale) : 0u;
      }
  }

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float o[kTiles][4] = {};
  const int first_block = begin / kBlockSize, last_block = (end - 1) / kBlockSize;
  CacheBlockRing<D, kFp8, kAhead, kStride> ring;
  ring.start(a, block, first_block + lead, last_block);
  // kRope, with the first cache blocks already requested: q normalised and rotated; the block
  // whose range ends at the token computes and stores the new key and value (its own copy of
  // their cache block, requested before the store, is patched from shared memory below).
  __shared__ NewRowShared<D, kFp8, kRope> new_rows;
  const bool writer = kRope && end == pos + 1;
  if constexpr (kRope) rope_in_block<D, kFp8>(a, tok, kv_head, group, pos, qscale, writer, new_rows, qa);
  for (int b = first_block + lead; b <= last_block; b += kStride) {
    ring.request_ahead(a, block, b, last_block);
    if constexpr (kRope)
      if (writer && b == last_block) patch_new_rows<D, kFp8>(ring.words[0], b * kBlockSize, pos, new_rows);
    const auto& kw = ring.words[0].kw;
    const auto& vw = ring.words[0].vw;
    // S = q K^T for the block's 16 keys: n-tile j holds keys 8j..8j+7, column g = key 8j + g.
    float c[2][4] = {};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        uint32_t b0, b1;
        if constexpr (kFp8) {
          b0 = e4m3x2_to_f16x2(kw[j][s]);
          b1 = e4m3x2_to_f16x2(kw[j][s] >> 16);
        } else {
          b0 = kw[j][2 * s];
          b1 = kw[j][2 * s + 1];
        }
        mma16816<kFp8>(c[j], qa[s], b0, b1);
      }
    }
    // Mask, online softmax per row (row g: c[.][0..1], row g+8: c[.][2..3]; a row's 16 keys
    // sit in the four lanes of quad g).
    // Every block masked, and every output rescaled below: masking only the range's edge blocks
    // and skipping the rescale by a warp vote where no maximum moved measured slower at short
    // contexts (Qwen3-8B batch 1 / 16: 339.3 / 4,548 against 342.8 / 4,601 tok/s, H100,
    // 2026-12-06, same call), the vote being one more step of each block's dependent chain.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = b * kBlockSize + 8 * j + 2 * t + (e & 1);
        if (key < begin || key >= end) c[j][e] = -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], c[j][e]);
      }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r]);  // finite: the block holds a key of [begin, end)
      alpha[r] = __expf(m[r] - m_new);
      m[r] = m_new;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        c[j][e] = __expf(c[j][e] - m[e >> 1]);
        l[e >> 1] += c[j][e];
      }
#pragma unroll
    for (int n = 0; n < kTiles; ++n) {
      o[n][0] *= alpha[0], o[n][1] *= alpha[0];
      o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    }
    // P as the A operand: k positions 2t,2t+1 are keys 2t,2t+1; 2t+8,2t+9 are keys 8+2t,9+2t.
    const uint32_t pa[4] = {pack2<kFp8>(c[0][0], c[0][1]), pack2<kFp8>(c[0][2], c[0][3]),
                            pack2<kFp8>(c[1][0], c[1][1]), pack2<kFp8>(c[1][2], c[1][3])};
#pragma unroll
    for (int n = 0; n < kTiles; ++n) {
      mma16816<kFp8>(o[n], pa, value_pair<kFp8>(vw[0], vw[1], n), value_pair<kFp8>(vw[2], vw[3], n));
    }
    ring.advance();
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }

  const MergeLayout<D> layout{a.merge_column_stride, a.merge_row_stride};
  extern __shared__ float o_s[];
  __shared__ WarpResults<W> results;
  if (t == 0) {
    results.m[warp][g] = m[0], results.l[warp][g] = l[0];
    results.m[warp][g + 8] = m[1], results.l[warp][g + 8] = l[1];
  }
#pragma unroll
  for (int n = 0; n < kTiles; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int h = g + 8 * (e >> 1);
      if (h < group) o_s[layout.at(warp * group + h, 2 * t + (e & 1), n)] = o[n][e];
    }
  merge_warps_and_store<D, C, W>(a, layout, results, o_s, block.at);
}

// The same attention with both products transposed, for query groups of up to 8 (the default
// for them; FP4LLM_ATTN_KEY_ROWS=0 takes mma_decode_kernel): S^T = K Q^T with the cache block's 16 keys as the MMA's
// rows and the group (padded to 8) as its columns, then O^T = V^T P^T with the head's dims as rows.
// mma_decode_kernel's rows are query heads g and g+8, padding for every group up to 8 (Qwen3-8B 4,
// Qwen3-30B-A3B 8, Gemma3-27B 2); here no row is padding, so a cache block takes D/8 MMAs instead
// of D/4 (16 against 32 at head_dim 128), the rescale D/4 multiplies a lane instead of D/2 and the
// output D/4 registers instead of D/2. The kernel was bound by its dependent instructions with
// one or two warps per scheduler (docs/PERFORMANCE.md fifteenth session, 194 registers at head_dim
// 128): fewer instructions a block, and fewer registers for more resident warps at long contexts.
// P^T's operand comes from S^T's accumulators by one movmatrix transpose per 8 keys; a query's
// maximum is reduced over the 8 lanes of its column (3 shuffles), its sum only after the loop.
// kMinBlocks: blocks an SM must hold (FP4LLM_ATTN_KEY_ROWS=bounded: 4 of 4 warps with an FP8 cache,
// 128 registers at head_dim 128 without spills, against 3 blocks at the 146 it takes unbounded;
// measured slower, H100 2026-12-06: 32k FP8 attention 1,520 against 1,506 us a step).
// kRope: as in mma_decode_kernel, the block also takes the rope kernel's work.
template <int D, bool kFp8, int kAhead = 1, bool kRope = false, int C = 1, int W = kWarps, int kMinBlocks = 1>
__global__ void __launch_bounds__(W * 32, kMinBlocks) mma_decode_key_rows_kernel(Args a) {
  static_assert(C == 1 || !kRope, "the rope's writer is one block of the last split");
  let_dependents_start();
  // With kRope, or cache_blocks_before_wait, the wait comes after the first cache blocks are requested.
  const bool blocks_first = !kRope && a.p.cache_blocks_before_wait;
  if constexpr (!kRope)
    if (!blocks_first) wait_for_producer();
  constexpr int kSteps = D / 16;  // k-steps of S^T, and m-tiles of O^T
  constexpr int kSlice = D / 8;   // value dims per lane (the PV permutation)
  DecodeBlock block;
  if (!locate_block<C>(a, block)) return;
  const int tok = block.at.tok, kv_head = block.at.kv_head, group = block.at.group;
  const int pos = block.pos, begin = block.begin, end = block.end;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane >> 2, t = lane & 3;
  // This warp's first cache block of the split and the stride between its blocks.
  constexpr int kStride = C * W;
  const int lead = block.at.rank * W + warp;

  // Q^T as the B operand, softmax and K scales folded in: column g is query head g (zero past the
  // group); k positions 2t, 2t+1 of step s are dims D/4 t + 4s + {0, 1}, 2t+8, 2t+9 are
  // D/4 t + 4s + {2, 3} (K's permutation in load_cache_block). Four dims a float4: q rows are
  // head_dim floats apart in a 16-byte aligned buffer.
  const float qscale = a.p.scale * a.p.k_scale;
  uint32_t qb[kSteps][2];
  const auto load_q = [&] {
    const bool ok = g < group;
    const float* q = a.q + (size_t(tok) * a.p.heads + size_t(kv_head) * group + (ok ? g : 0)) * D + D / 4 * t;
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      const float4 v = ok ? *reinterpret_cast<const float4*>(q + 4 * s) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      qb[s][0] = pack2<kFp8>(v.x * qscale, v.y * qscale);
      qb[s][1] = pack2<kFp8>(v.z * qscale, v.w * qscale);
    }
  };
  if constexpr (!kRope)
    if (!blocks_first) load_q();

  // Softmax state of query heads 2t and 2t+1: maxima (equal in the 8 lanes of a column) and this
  // lane's share of the sums (its keys g and 8+g), summed over the column after the loop.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  // O^T m-tile i: rows g and g+8 are dims g*kSlice + i and g*kSlice + kSlice/2 + i, columns query
  // heads 2t and 2t+1.
  float o[kSteps][4] = {};
  const int first_block = begin / kBlockSize, last_block = (end - 1) / kBlockSize;
  CacheBlockRing<D, kFp8, kAhead, kStride> ring;
  // Before the wait (cache_blocks_before_wait), every first block but the one the rope kernel writes into.
  const int own_block = blocks_first ? pos / kBlockSize : -1;
  ring.start(a, block, first_block + lead, last_block, own_block);
  if constexpr (!kRope)
    if (blocks_first) {  // q and the token's own key are the rope kernel's
      wait_for_producer();
      ring.load_skipped(a, block, first_block + lead, last_block, own_block);
      load_q();
    }
  __shared__ NewRowShared<D, kFp8, kRope> new_rows;
  const bool writer = kRope && end == pos + 1;
  if constexpr (kRope) {  // q from the raw q|k|v row: rows g of the A layout are columns g of Q^T
    uint32_t qa[kSteps][4];
    rope_in_block<D, kFp8, 1>(a, tok, kv_head, group, pos, qscale, writer, new_rows, qa);
#pragma unroll
    for (int s = 0; s < kSteps; ++s) qb[s][0] = qa[s][0], qb[s][1] = qa[s][2];
  }
  for (int b = first_block + lead; b <= last_block; b += kStride) {
    ring.request_ahead(a, block, b, last_block);
    if constexpr (kRope)
      if (writer && b == last_block) patch_new_rows<D, kFp8>(ring.words[0], b * kBlockSize, pos, new_rows);
    const auto& kw = ring.words[0].kw;
    const auto& vw = ring.words[0].vw;
    // S^T: rows g and g+8 are keys 16b + g and 16b + 8 + g; two chains of k-steps, summed.
    float c[4] = {}, c_odd[4] = {};
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      uint32_t ka[4];
      if constexpr (kFp8) {
        ka[0] = e4m3x2_to_f16x2(kw[0][s]), ka[1] = e4m3x2_to_f16x2(kw[1][s]);
        ka[2] = e4m3x2_to_f16x2(kw[0][s] >> 16), ka[3] = e4m3x2_to_f16x2(kw[1][s] >> 16);
      } else {
        ka[0] = kw[0][2 * s], ka[1] = kw[1][2 * s], ka[2] = kw[0][2 * s + 1], ka[3] = kw[1][2 * s + 1];
      }
      if (s % 2) mma16816<kFp8>(c_odd, ka, qb[s][0], qb[s][1]);
      else mma16816<kFp8>(c, ka, qb[s][0], qb[s][1]);
    }
    // Mask and online softmax: c[e] is key 16b + g + 8 (e >> 1) for query head 2t + (e & 1).
    float mx[2];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      c[e] += c_odd[e];
      const int key = b * kBlockSize + g + 8 * (e >> 1);
      if (key < begin || key >= end) c[e] = -INFINITY;
    }
    mx[0] = fmaxf(c[0], c[2]), mx[1] = fmaxf(c[1], c[3]);
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int x = 4; x < 32; x *= 2) mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], x));
      const float m_new = fmaxf(m[r], mx[r]);  // finite: the block holds a key of [begin, end)
      alpha[r] = __expf(m[r] - m_new);
      m[r] = m_new;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      c[e] = __expf(c[e] - m[e & 1]);
      l[e & 1] += c[e];
    }
#pragma unroll
    for (int i = 0; i < kSteps; ++i) {
      o[i][0] *= alpha[0], o[i][1] *= alpha[1];
      o[i][2] *= alpha[0], o[i][3] *= alpha[1];
    }
    // P^T as the B operand: each 8-key half of S^T's accumulators, transposed, gives lane (g, t)
    // query head g's probabilities of keys 2t, 2t+1 (and 8+2t, 9+2t).
    const uint32_t pb0 = transpose_8x8(pack2<kFp8>(c[0], c[1])), pb1 = transpose_8x8(pack2<kFp8>(c[2], c[3]));
    // V^T as the A operand, m-tile i: rows g / g+8 are elements i / kSlice/2 + i of the lane's
    // value slice, k positions 2t, 2t+1 / 8+2t, 9+2t its rows vw[0], vw[1] / vw[2], vw[3].
#pragma unroll
    for (int i = 0; i < kSteps; ++i) {
      const uint32_t va[4] = {value_pair<kFp8>(vw[0], vw[1], i), value_pair<kFp8>(vw[0], vw[1], kSlice / 2 + i),
                              value_pair<kFp8>(vw[2], vw[3], i), value_pair<kFp8>(vw[2], vw[3], kSlice / 2 + i)};
      mma16816<kFp8>(o[i], va, pb0, pb1);
    }
    ring.advance();
  }
#pragma unroll
  for (int r = 0; r < 2; ++r)
#pragma unroll
    for (int x = 4; x < 32; x *= 2) l[r] += __shfl_xor_sync(0xffffffffu, l[r], x);

  const MergeLayout<D> layout{a.merge_column_stride, a.merge_row_stride};
  extern __shared__ float o_s[];
  __shared__ WarpResults<W> results;
  if (g == 0) {
    results.m[warp][2 * t] = m[0], results.l[warp][2 * t] = l[0];
    results.m[warp][2 * t + 1] = m[1], results.l[warp][2 * t + 1] = l[1];
  }
#pragma unroll
  for (int i = 0; i < kSteps; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int h = 2 * t + (e & 1);
      if (h < group) o_s[layout.at(warp * group + h, g, (e >> 1) * (kSlice / 2) + i)] = o[i][e];
    }
  merge_warps_and_store<D, C, W>(a, layout, results, o_s, block.at);
}

// Which decode kernel a launch takes: the query group as the MMA's rows (mma_decode_kernel), or
// the keys (mma_decode_key_rows_kernel), free or held to 4 blocks a SM (FP4LLM_ATTN_KEY_ROWS).
enum class Rows { kQueries, kKeys, kKeysBounded };

template <int D, bool kFp8, int kAhead, bool kRope, int C, int W, Rows kRows>
constexpr auto decode_kernel() {
  if constexpr (kRows == Rows::kKeysBounded) return &mma_decode_key_rows_kernel<D, kFp8, kAhead, kRope, C, W, 4>;
  else if constexpr (kRows == Rows::kKeys) return &mma_decode_key_rows_kernel<D, kFp8, kAhead, kRope, C, W>;
  else return &mma_decode_kernel<D, kFp8, kAhead, kRope, C, W>;
}

// With clusters of C blocks the splits are C times fewer, so that a (token, kv head) keeps the
// blocks it has without them: 32 splits of 8 blocks made the 32k FP8 attention 2.5x slower
// (H100, 2026-12-06), while at short contexts, one split, the 8 blocks share its few cache blocks.
template <int D, bool kFp8, int kAhead, bool kRope, int C, int W = kWarps, Rows kRows = Rows::kQueries>
void launch_clusters(const Args& a, dim3 grid, cudaStream_t stream) {
  constexpr auto kernel = decode_kernel<D, kFp8, kAhead, kRope, C, W, kRows>();
  const int kMaxSmem = int(MergeLayout<D>::padded().floats(W * 16) * sizeof(float));  // query groups up to 16
  allow_dynamic_smem<kernel>(kMaxSmem);
  const MergeLayout<D> layout{a.merge_column_stride, a.merge_row_stride};
  const size_t smem = layout.floats(W * int(a.p.heads / a.p.kv_heads)) * sizeof(float);
  Args clustered = a;
  clustered.p.splits = (a.p.splits + C - 1) / C;
  grid.z = unsigned(clustered.p.splits) * C;
  // cache_blocks_before_wait: launched early in every model, so that its first requests overlap
  // the rope kernel (the query-rows kernel then only waits at its start, as launched early anyway).
  launch_dependent_in_clusters(early_launch_all() || a.p.cache_blocks_before_wait, unsigned(C), kernel, grid,
                               dim3(W * 32), smem, stream, clustered);
}

// FP4LLM_ATTN_CLUSTER=2, 4 or 8 (sm_90; not with FP4LLM_ROPE_IN_ATTENTION): blocks per split,
// merged in a cluster (see mma_decode_kernel). 1 otherwise: with the key rows no faster at batch 1
// (H100, 2026-12-06: Qwen3-30B-A3B 387.1 / 387.3 against 390.0 tok/s with 2 / 4), and at 32k both
// caches gain alike (FP8 1,371 against 1,502 us a step, BF16 2,147 against 2,387).
int attention_cluster() {
  static const int c = [] {
    const int64_t v = knob_int("FP4LLM_ATTN_CLUSTER", 1);
    return (v == 2 || v == 4 || v == 8) && device_is_sm90_or_later() ? int(v) : 1;
  }();
  return c;
}

// FP4LLM_ATTN_WARPS=8: warps per block for the FP8 cache one block ahead, without clusters or
// rope (measured no faster, see kWarps); kWarps otherwise.
bool eight_warps_requested() {
  static const bool on = knob_is("FP4LLM_ATTN_WARPS", "8");
  return on;
}

template <int D, bool kFp8, int kAhead = 1, bool kRope = false, Rows kRows = Rows::kQueries>
void launch_kernel(const Args& a, const dim3& grid, cudaStream_t stream) {
  if constexpr (!kRope) {  // the rope's writer is one block: no clusters
    const int c = attention_cluster();
    if (c == 8) return launch_clusters<D, kFp8, kAhead, false, 8, kWarps, kRows>(a, grid, stream);
    if (c == 4) return launch_clusters<D, kFp8, kAhead, false, 4, kWarps, kRows>(a, grid, stream);
    if (c == 2) return launch_clusters<D, kFp8, kAhead, false, 2, kWarps, kRows>(a, grid, stream);
    if constexpr (kFp8 && kAhead == 1)
      if (eight_warps_requested())
        return launch_clusters<D, true, 1, false, 1, 8, kRows == Rows::kQueries ? kRows : Rows::kKeys>(a, grid, stream);
  }
  launch_clusters<D, kFp8, kAhead, kRope, 1, kWarps, kRows>(a, grid, stream);
}

// Cache blocks the FP8 kernel requests ahead (FP4LLM_ATTN_FP8_AHEAD, 1 to 3; more measured no faster).
int fp8_ahead() {
  static const int ahead = int(std::clamp<int64_t>(knob_int("FP4LLM_ATTN_FP8_AHEAD", 1), 1, 3));
  return ahead;
}

// mma_decode_key_rows_kernel where it applies (query groups up to 8, one cache block ahead), by
// default since the nineteenth session's A/B (H100, same call: batch 1 Qwen3-30B-A3B 374.1 -> 390.0,
// Qwen3-8B 345.9 -> 352.1 tok/s; batch 16 +1.6% / +3.2%; the 32k FP8 attention 1,708 -> 1,506 us a
// step). FP4LLM_ATTN_KEY_ROWS=0: mma_decode_kernel everywhere;
// =bounded: the FP8 kernel (without the rope) held to 4 blocks of 4 warps a SM (measured slower:
// 383.2, 351.3).
bool key_rows_requested() {
  static const bool on = !knob_is("FP4LLM_ATTN_KEY_ROWS", "0");
  return on;
}
bool key_rows_bounded() {
  static const bool on = knob_is("FP4LLM_ATTN_KEY_ROWS", "bounded");
  return on;
}
// FP4LLM_ATTN_FP8_AHEAD=2 or 3 reaches the key-rows kernel without the rope and without clusters
// (one instance each per head_dim, to keep the unit's compile time); the former kernel otherwise.
bool use_key_rows(const Args& a) {
  return key_rows_requested() && a.p.heads / a.p.kv_heads <= 8 &&
         (!a.p.fp8 || fp8_ahead() == 1 || (!a.rope.qkv && attention_cluster() == 1 && !key_rows_bounded()));
}

template <int D, bool kRope>
void launch_key_rows(const Args& a, const dim3& grid, cudaStream_t stream) {
  if (a.p.fp8 && key_rows_bounded() && !kRope) launch_kernel<D, true, 1, false, Rows::kKeysBounded>(a, grid, stream);
  else if (a.p.fp8 && !kRope && fp8_ahead() == 2) launch_clusters<D, true, 2, false, 1, kWarps, Rows::kKeys>(a, grid, stream);
  else if (a.p.fp8 && !kRope && fp8_ahead() == 3) launch_clusters<D, true, 3, false, 1, kWarps, Rows::kKeys>(a, grid, stream);
  else if (a.p.fp8) launch_kernel<D, true, 1, kRope, Rows::kKeys>(a, grid, stream);
  else launch_kernel<D, false, 1, kRope, Rows::kKeys>(a, grid, stream);
}

template <int D>
void launch(const Args& a, int64_t tokens, cudaStream_t stream) {
  const dim3 grid(unsigned(tokens), unsigned(a.p.kv_heads), unsigned(a.p.splits));
  if (use_key_rows(a)) {
    if (a.rope.qkv) launch_key_rows<D, true>(a, grid, stream);
    else launch_key_rows<D, false>(a, grid, stream);
  } else if (a.rope.qkv) {
    if (a.p.fp8 && fp8_ahead() == 3) launch_kernel<D, true, 3, true>(a, grid, stream);
    else if (a.p.fp8 && fp8_ahead() == 2) launch_kernel<D, true, 2, true>(a, grid, stream);
    else if (a.p.fp8) launch_kernel<D, true, 1, true>(a, grid, stream);
    else launch_kernel<D, false, 1, true>(a, grid, stream);
  } else if (a.p.fp8 && fp8_ahead() == 3) launch_kernel<D, true, 3>(a, grid, stream);
  else if (a.p.fp8 && fp8_ahead() == 2) launch_kernel<D, true, 2>(a, grid, stream);
  else if (a.p.fp8) launch_kernel<D, true>(a, grid, stream);
  else launch_kernel<D, false>(a, grid, stream);
}

}  // namespace

bool mma_decode_attention_supports(const AttentionParams& p) {
  return (p.head_dim == 64 || p.head_dim == 128) && p.heads % p.kv_heads == 0 && p.heads / p.kv_heads <= 16;
}

namespace {

void check_launch(const AttentionParams& p, const AttentionWorkspace& ws) {
  if (!mma_decode_attention_supports(p))
    throw_error("tensor-core decode attention: head_dim " + std::to_string(p.head_dim) + " with " +
                std::to_string(p.heads / p.kv_heads) + " query heads per kv head is not supported");
  if (p.splits > 1 && (!ws.partial_out || !ws.counters)) throw_error("CUDA attention: split-KV needs a workspace");
}

template <int D>
void launch_with_layout(Args a, int64_t tokens, cudaStream_t stream) {
  static const bool padded = knob_on("FP4LLM_ATTN_PADDED_MERGE");
  const MergeLayout<D> layout = use_key_rows(a) ? MergeLayout<D>::key_rows()
                                : padded        ? MergeLayout<D>::padded()
                                                : MergeLayout<D>{};
  a.merge_column_stride = layout.column_stride, a.merge_row_stride = layout.row_stride;
  launch<D>(a, tokens, stream);
}

void launch_any(const Args& a, int64_t tokens, cudaStream_t stream) {
  if (a.p.head_dim == 64) launch_with_layout<64>(a, tokens, stream);
  else launch_with_layout<128>(a, tokens, stream);
}

}  // namespace

void mma_decode_attention(const float* q, const void* k_cache, const void* v_cache, const int32_t* positions,
                          const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                          const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                          cudaStream_t stream) {
  if (tokens == 0) return;
  check_launch(p, ws);
  launch_any({attention_inputs(q, k_cache, v_cache, positions, token_seq, block_tables), p, ws, out, {}}, tokens, stream);
}

void mma_decode_attention_with_rope(const float* qkv, const RopeCacheParams& rp, const RopeCacheIo& io,
                                    const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                                    const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                                    cudaStream_t stream) {
  if (tokens == 0) return;
  check_launch(p, ws);
  launch_any({attention_inputs(nullptr, io.k_cache, io.v_cache, io.positions, token_seq, block_tables), p, ws, out,
              rope_in_attention_args(qkv, rp, io, p)},
             tokens, stream);
}

}  // namespace fp4llm::cuda
