// The decode GEMV on warpgroup MMAs (sm_90): the default for plain products of 17-64 rows
// (33-64 measured on the H100, 2026-12-05: +12% at batch 64 on Qwen3-8B, +31% on Gemma3-27B;
// 17-32 on 2026-12-07 with the shared-x kernel's wide stages: +19% at batch 32 on Qwen3-8B), 9-64
// with FP4LLM_GEMV_KERNEL=wgmma. Written against what bounds the copy ring at 64 rows: every
// warp re-reads its K range of x for all 64 rows from L2 (64 x 4,096 x 2 B = 512 KB per 16-row
// tile, 786 MB for Qwen3-8B's gate_up against 57 MB of weights; docs/PERFORMANCE.md), and each
// chunk costs 8 groups x 4 mma.sync plus their x loads. Here a warpgroup (4 warps, 64 rows)
// stages each chunk of x once in shared memory and one m64nNk16 per k-step reads it there (N =
// the rows padded to 16, 32 or 64 tokens): x comes from L2 once per 64 rows instead of once per
// 16, and a chunk is 4 MMA instructions per warp. Weights are dequantized into registers exactly
// as in the other decode kernels (A fragments), so the results match them up to float32
// summation order.
//
// A block is kGroups warpgroups on the same 64 rows, each on its share of K with its own x
// stages; their sums meet in shared memory at the end. With kCluster > 1 (FP4LLM_WGMMA_CLUSTER)
// a cluster of that many blocks shares the rows, K split over all its warpgroups, and the blocks'
// sums meet in block 0 through distributed shared memory, in a fixed order: results never depend
// on timing. x stages hold 128 / N chunks, double-buffered, in the K-major
// core-matrix layout of wgmma_bf16.cuh, with K permuted within each chunk as the A fragments are
// (nvfp4_gemv_tile.cuh: MMA k-step i takes values 4i..4i+3 of each lane's block).
#pragma once

#include <cooperative_groups.h>

#include "backend/cuda/bulk_copy.cuh"
#include "backend/cuda/copy_async.cuh"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/streaming_load.cuh"
#include "backend/cuda/wgmma_bf16.cuh"
#include "backend/cuda/wgmma_x_layout.cuh"

namespace fp4llm::cuda {

namespace {

// A warpgroup's x stages: two buffers of kWgmmaStageBytes (wgmma_x_layout.cuh).
constexpr int kWgmmaGroupBytes = 2 * kWgmmaStageBytes;

__host__ __device__ constexpr int wgmma_smem_bytes(int groups) { return groups * kWgmmaGroupBytes; }

// The x stages of a block of kGroups warpgroups (one set when they share x, kGroups times wider
// with kWide); a weight ring (FP4LLM_WGMMA_RING) follows them.
template <int kGroups, bool kShareX, bool kWide = false>
__host__ __device__ constexpr int wgmma_stage_bytes() {
  return wgmma_smem_bytes(kShareX && !kWide ? 1 : kGroups);
}


// One (token, chunk) of x from global memory (64 columns: eight 16-byte loads, zero past K) ...
struct XChunkRow {
  uint4 v[8];  // v[2t + h]: columns 16t + 8h .. + 7
  __device__ __forceinline__ void load(const __nv_bfloat16* row, int chunk, int k) {
#pragma unroll
    for (int t = 0; t < 4; ++t)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = chunk * 64 + 16 * t + 8 * h;
        v[2 * t + h] = col < k ? __ldg(reinterpret_cast<const uint4*>(row + col)) : make_uint4(0, 0, 0, 0);
      }
  }
  // ... into its eight core rows. Core row (i, hi) holds, for t = 0..3, the column pair
  // 16t + 4i + 2hi (and + 1): word (2 (i % 2) + hi) of load (t, h = i / 2).
  template <int N>
  __device__ __forceinline__ void store(uint8_t* chunk_smem, int n) const {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int hi = 0; hi < 2; ++hi) {
        const int h = i / 2, c = 2 * (i % 2) + hi;
        const auto word = [&](int t) {
          const uint4& q = v[2 * t + h];
          return c == 0 ? q.x : c == 1 ? q.y : c == 2 ? q.z : q.w;
        };
        *reinterpret_cast<uint4*>(chunk_smem + WgmmaShape<N>::core_row_offset(n, i, hi)) =
            make_uint4(word(0), word(1), word(2), word(3));
      }
  }
};

// Asks L1 for the 128-byte line of x at `p` (a hint: nothing is returned or waited for).
__device__ __forceinline__ void prefetch_l1(const void* p) {
  asm volatile("prefetch.global.L1 [%0];" ::"l"(__cvta_generic_to_global(p)));
}

// A warp's weights of two chunks in flight (zero past its share of K or past the last tile):
// slot c % 2 holds chunk c, refilled with chunk c + 2 as soon as chunk c is dequantized, two
// chunks ahead of the arithmetic as in the direct kernel, whatever the stage size.
struct WgmmaWeights {
  uint4 w[2];
  uint32_t s[2];
  __device__ __forceinline__ void load(int slot, const uint4* wl, const uint16_t* sl, int chunk, int end, bool live) {
    const bool ok = live && chunk < end;
    w[slot] = ok ? load_streaming(wl + chunk * 32) : make_uint4(0, 0, 0, 0);
    s[slot] = ok ? load_streaming(sl + chunk * 32) : 0u;
  }
};

// A warp's weights in flight through shared memory instead (FP4LLM_WGMMA_RING=1; measured slower at
// batch 64, nvfp4_linear.cu): a ring of kWgmmaRing chunks, each the 32 lanes' 16 packed bytes and
// the warp's 64 bytes of scales, filled by cp.async kWgmmaRing - 1 chunks ahead of the one
// dequantized. The register path holds two chunks (about 1 KB a warp, 16 KB a SM of 16 warps); at
// batch 64 the products wait on global loads most of the time (long scoreboard 57-63%, Nsight
// Compute, eighteenth session), and more chunks in registers would not fit the 128 a thread of
// 512-thread blocks. 8 chunks: 4.6 KB a warp (kWgmmaRingWarpBytes), 73 KB for 16 warps, after
// the x stages. A slot: the packed words, then the scales (the bulk ring's too).
constexpr int kWgmmaRing = 8;
struct WgmmaWeightRing {
  static constexpr int kPackedBytes = 32 * 16, kScaleBytes = 32 * 2, kSlotBytes = kPackedBytes + kScaleBytes;
  uint8_t* ring;             // this warp's slots
  const uint4* wl;           // this lane's packed words of chunk 0 (stride 32 a chunk)
  const uint16_t* warp_sl;   // the warp's scales of chunk 0 (lane 0's; 32 a chunk)
  int end, lane;
  bool live;
  // Chunk `chunk` into slot chunk % kWgmmaRing (zeros past the warp's share of K or past the last
  // tile), one commit group whatever it holds, so that the count of groups in flight is fixed.
  __device__ __forceinline__ void issue(int chunk) const {
    uint8_t* slot = ring + (chunk % kWgmmaRing) * kSlotBytes;
    const bool ok = live && chunk < end;
    const size_t at = size_t(ok ? chunk : 0) * 32;  // nothing is read when !ok; the address stays in range anyway
    copy_async16_or_zero(slot + lane * 16, wl + at, ok);
    if (lane < 4) copy_async16_or_zero(slot + kPackedBytes + lane * 16, warp_sl + at + lane * 8, ok);
    copy_async_commit();
  }
  // Chunk `chunk`'s words for this lane, once chunks up to it have landed: the issues run
  // kWgmmaRing - 1 ahead, so kWgmmaRing - 2 later groups may still be in flight. The scales are
  // copied by lanes 0-3, hence the warp barrier before any lane reads them; it also orders every
  // lane's reads of the previous chunk before the issue that refills its slot.
  __device__ __forceinline__ void take(int chunk, uint4& w, uint32_t& s) const {
    copy_async_wait<kWgmmaRing - 2>();
    __syncwarp();
    const uint8_t* slot = ring + (chunk % kWgmmaRing) * kSlotBytes;
    w = *reinterpret_cast<const uint4*>(slot + lane * 16);
    s = *reinterpret_cast<const uint16_t*>(slot + kPackedBytes + lane * 2);
  }
};

// The same ring filled by bulk copies (FP4LLM_WGMMA_RING=bulk; bulk_copy.cuh): a warp's chunks are
// contiguous in the tile layout, so lane 0 moves a chunk's 512 packed bytes and 64 bytes of scales
// with two copies onto the slot's barrier, and no lane issues per-16-byte copies or commit groups.
// A slot is refilled only once the chunk it held has been dequantized (the refill of chunk c - 1's
// slot is issued when chunk c is taken): the lanes' loads of it have then returned, since their
// registers were read. The first version refilled a slot right after the lanes' loads and a warp
// barrier, with nothing ordering those generic-proxy loads before the copy engine's writes, and
// failed its tests wherever a slot was refilled (H100, 2026-12-07; commit 24ff304).
struct WgmmaBulkRing {
  static constexpr int kPackedBytes = WgmmaWeightRing::kPackedBytes, kScaleBytes = WgmmaWeightRing::kScaleBytes;
  uint8_t* ring;             // this warp's slots, then their barriers
  const uint4* warp_wl;      // the warp's packed words of chunk 0 (lane 0's; 32 a chunk)
  const uint16_t* warp_sl;   // the warp's scales of chunk 0 (lane 0's; 32 a chunk)
  int end, lane;
  bool live;
  __device__ __forceinline__ uint64_t* barrier(int chunk) const {
    return reinterpret_cast<uint64_t*>(ring + kWgmmaRing * WgmmaWeightRing::kSlotBytes) + chunk % kWgmmaRing;
  }
  // The slots' barriers, then the first kWgmmaRing chunks requested.
  __device__ __forceinline__ void start() const {
    if (!live) return;  // a warp past the last tile multiplies zeros, reading nothing
    if (lane == 0) {
      for (int c = 0; c < kWgmmaRing; ++c) barrier_init_single(barrier(c));
      barrier_init_fence();
      for (int c = 0; c < kWgmmaRing; ++c) issue(c);
    }
    __syncwarp();
  }
  // Chunk `chunk` into slot chunk % kWgmmaRing (lane 0), unless past the warp's share of K.
  __device__ __forceinline__ void issue(int chunk) const {
    if (chunk >= end) return;
    uint8_t* slot = ring + (chunk % kWgmmaRing) * WgmmaWeightRing::kSlotBytes;
    uint64_t* done = barrier(chunk);
    barrier_expect_bytes(done, WgmmaWeightRing::kSlotBytes);
    bulk_copy(slot, warp_wl + size_t(chunk) * 32, kPackedBytes, done);
    bulk_copy(slot + kPackedBytes, warp_sl + size_t(chunk) * 32, kScaleBytes, done);
  }
  // Chunk `chunk`'s words for this lane once they have landed. Chunk - 1 was dequantized before
  // this call, so its slot is refilled (with chunk - 1 + kWgmmaRing) after the warp barrier that
  // orders every lane's use of it.
  __device__ __forceinline__ void take(int chunk, uint4& w, uint32_t& s) const {
    if (!live) {
      w = make_uint4(0, 0, 0, 0);
      s = 0;
      return;
    }
    __syncwarp();
    if (lane == 0 && chunk > 0) issue(chunk - 1 + kWgmmaRing);
    barrier_wait(barrier(chunk), uint32_t(chunk / kWgmmaRing) & 1u);
    const uint8_t* slot = ring + (chunk % kWgmmaRing) * WgmmaWeightRing::kSlotBytes;
    w = *reinterpret_cast<const uint4*>(slot + lane * 16);
    s = *reinterpret_cast<const uint16_t*>(slot + kPackedBytes + lane * 2);
  }
};

// Shared memory a warp's ring takes (either kind): the slots and the bulk ring's barriers.
constexpr int kWgmmaRingWarpBytes = kWgmmaRing * (WgmmaWeightRing::kSlotBytes + 8);
static_assert(kWgmmaRingWarpBytes % 16 == 0, "each warp's slots start 16-byte aligned");

// Block `rank` > 0 of a cluster hands its sums (acc of warpgroup 0, or with kEveryGroup of each
// warpgroup, each its own rows: in `mine`, stage memory no longer read, kValues x 128 floats a
// warpgroup) to block 0, which adds them in rank order. Every thread of every block passes both
// cluster barriers; the second keeps each block's memory alive until block 0 has read it.
template <int N, int kCluster, bool kEveryGroup = false>
__device__ __forceinline__ void cluster_sum(float (&acc)[N / 8][4], float* mine, int rank, int group, int tid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();  // clusters are sm_90's, as is the wgmma kernel
#else
  constexpr int kValues = N / 2;
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const bool sums = kEveryGroup || group == 0;
  if constexpr (kEveryGroup) mine += group * kValues * 128;
  if (rank > 0 && sums) {
#pragma unroll
    for (int j = 0; j < kValues; ++j) mine[j * 128 + tid] = acc[j / 4][j % 4];
  }
  cluster.sync();
  if (rank == 0 && sums) {
#pragma unroll 1
    for (int r = 1; r < kCluster; ++r) {
      const float* theirs = cluster.map_shared_rank(mine, r);
#pragma unroll
      for (int j = 0; j < kValues; ++j) acc[j / 4][j % 4] += theirs[j * 128 + tid];
    }
  }
  cluster.sync();
#endif
}

// The rows of one slice (all rows of a plain product; up to N routed rows of one expert group)
// times the 64 weight rows of row block `row_block`, written out. kWait: the early-launch wait comes after the
// first weights are requested (plain products; expert groups waited before choosing their weights).
// rank: the block's rank in its cluster of kCluster blocks (K share rank x kGroups + warpgroup).
// kShareX (FP4LLM_WGMMA_SHARE_X): the block's warpgroups take kGroups consecutive row blocks from
// `row_block` on, all of K each, and share one copy of x staged by warpgroup 0, so x is read from
// L2 once per 64 x kGroups rows (gate_up of Qwen3-8B at batch 64: 201 MB of x a layer with one
// row block per block, against 57 MB of weights).
// kRing: the weights through WgmmaWeightRing after the x stages (plain products).
// kWide (with kShareX; FP4LLM_WGMMA_WIDE_STAGES): every warpgroup stages x, into stages kGroups
// times as long, so that the block meets at a barrier (and waits on x from L2) once per
// kGroups x 128 / N chunks instead of once per 128 / N: at N = 64 a stage of 2 chunks hides
// an L2 round trip behind two chunks' MMAs only.
// kOverlap (FP4LLM_WGMMA_OVERLAP): two sets of A fragments, so that a chunk's dequantization runs
// while the previous chunk's MMAs do (wait for all but the last group) instead of after them;
// the MMAs are drained before each stage barrier, since another warpgroup may refill the stage
// they read once past it. 16 more registers a thread: blocks of 3 warpgroups (168 allowed).
template <int N, int kGroups, bool kGrouped, bool kWait, int kCluster = 1, bool kShareX = false, bool kRing = false,
          bool kWide = false, bool kOverlap = false>
__device__ __forceinline__ void wgmma_slice(const GemvArgs& p, const Slice& slice, int row_block, int rank = 0) {
  static_assert(!kShareX || !kGrouped, "shared x: plain products");
  static_assert(!kWide || kShareX, "wide stages: shared x only");
  static_assert(!kOverlap || kShareX, "overlapped chunks: shared x only");
  static_assert(!kShareX || kCluster == 1 || kGroups * (N / 2) * 128 * 4 <= wgmma_stage_bytes<kGroups, kShareX, kWide>(),
                "the cluster's sums of every warpgroup fit the stage memory");
  using Shape = WgmmaShape<N>;
  constexpr int kStagers = kWide ? kGroups : 1;  // warpgroups that stage x
  constexpr int S = kStagers * Shape::kStageChunks, kStageBytes = kStagers * kWgmmaStageBytes;
  constexpr int kChunkBytes = Shape::kChunkBytes, kStepBytes = Shape::kStepBytes;
  constexpr int kShares = kShareX ? kCluster : kGroups * kCluster;  // K shares
  extern __shared__ __align__(128) uint8_t wgmma_smem[];
  const int group = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int warp = tid / 32, lane = tid % 32, g = lane >> 2, t = lane & 3;
  const int tile = (kShareX ? row_block + group : row_block) * 4 + warp;
  const bool live = tile < p.row_tiles;
  const int per_group = (p.k_chunks + kShares - 1) / kShares;
  const int share = kShareX ? rank : rank * kGroups + group;
  const int begin = min(p.k_chunks, share * per_group), end = min(p.k_chunks, begin + per_group), n = end - begin;
  const size_t first_slot = (size_t(live ? tile : 0) * p.k_chunks + begin) * 32 + lane;
  const uint4* wl = slice.packed + first_slot;
  const uint16_t* sl = slice.scales + first_slot;
  uint8_t* stages = wgmma_smem + (kShareX ? 0 : group * kWgmmaGroupBytes);  // [2][S chunks]
  const bool stager = !kShareX || kWide || group == 0;  // the threads that stage x
  // Stage barriers: the warpgroup's own, or the whole block's when it shares x.
  const auto stage_barrier = [&] {
    if constexpr (kShareX) __syncthreads();
    else warpgroup_barrier(group);
  };
  // This thread stages token xn of chunk xc of each stage (rows past the slice repeat its last:
  // their MMA columns are never written out).
  const int stage_tid = kWide ? int(threadIdx.x) : tid;
  const int xn = stage_tid % N, xc = stage_tid / N, xr = min(xn, slice.rows - 1);
  const int x_index = kGrouped && slice.x_rows ? slice.x_rows[slice.begin + xr] : slice.begin + xr;
  const __nv_bfloat16* x_row = p.x + size_t(x_index) * p.k;

  static_assert(S % 2 == 0, "a stage starts at an even chunk, so chunk c's weights are in slot c % 2 = u % 2");
  WgmmaWeights weights;
  uint8_t* const ring_smem =
      wgmma_smem + wgmma_stage_bytes<kGroups, kShareX, kWide>() + (threadIdx.x / 32) * kWgmmaRingWarpBytes;
  [[maybe_unused]] const WgmmaWeightRing ring{ring_smem, wl, sl - lane, n, lane, live};
  [[maybe_unused]] const WgmmaBulkRing bulk{ring_smem, wl - lane, sl - lane, n, lane, live};
  if constexpr (kRing) {
    if (p.ring_bulk) {
      bulk.start();
    } else {
#pragma unroll
      for (int c = 0; c < kWgmmaRing - 1; ++c) ring.issue(c);
    }
  } else {
    weights.load(0, wl, sl, 0, n, live);
    weights.load(1, wl, sl, 1, n, live);
  }
  if constexpr (kWait) wait_for_producer();  // weights are in flight; x is the producer's output
  XChunkRow x;
  // p.x_prefetch: this thread's x line of stage `stage` asked of L1 ahead of its register load.
  const auto prefetch_stage = [&](int stage) {
    if (p.x_prefetch && stager && stage * S + xc < n) prefetch_l1(x_row + size_t(begin + stage * S + xc) * 64);
  };
  prefetch_stage(1);
  if (stager && xc < n) {
    x.load(x_row, begin + xc, p.k);
    x.store<N>(stages + xc * kChunkBytes, xn);
  }
  fence_shared_for_wgmma();
  stage_barrier();

  float acc[N / 8][4] = {};
  uint32_t fragments[kOverlap ? 2 : 1][4][4];
  for (int s = 0, c0 = 0; c0 < n; ++s, c0 += S) {
    uint8_t* buffer = stages + (s % 2) * kStageBytes;
    // The descriptor's address field counts 16 bytes and stays below 2^14 in shared memory, so
    // each k-step's descriptor is the stage's plus its offset / 16.
    const uint64_t stage_descriptor = wgmma_descriptor(buffer, 128, 256);
    const int next_c = c0 + S;
    const bool more = next_c < n;
    if (stager && more && next_c + xc < n) x.load(x_row, begin + next_c + xc, p.k);
    prefetch_stage(s + 2);
#pragma unroll
    for (int u = 0; u < S; ++u) {
      if (c0 + u >= n) break;  // uniform over the warpgroup
      uint32_t(&a)[4][4] = fragments[kOverlap ? u % 2 : 0];
      if constexpr (kRing) {
        uint4 w;
        uint32_t scales;
        if (p.ring_bulk) {
          bulk.take(c0 + u, w, scales);
        } else {
          ring.take(c0 + u, w, scales);
          ring.issue(c0 + u + kWgmmaRing - 1);
        }
        dequant_chunk(w, scales, a);
      } else {
        dequant_chunk(weights.w[u % 2], weights.s[u % 2], a);
        weights.load(u % 2, wl, sl, c0 + u + 2, n, live);
      }
      wgmma_pin(a);
      wgmma_pin(acc);
      wgmma_fence();
#pragma unroll
      for (int i = 0; i < 4; ++i)
        wgmma_64xNx16<N>(acc, a[i], stage_descriptor + uint64_t((u * kChunkBytes + i * kStepBytes) >> 4));
      wgmma_commit();
      if constexpr (kOverlap) wgmma_wait<1>();  // the other fragments are rewritten next
      else wgmma_wait<0>();                     // a is rewritten by the next chunk's dequantization
      wgmma_pin(acc);
      wgmma_pin(a);
    }
    if constexpr (kOverlap) {
      wgmma_wait<0>();
      wgmma_pin(acc);
    }
    if (more) {
      if (stager && next_c + xc < n) x.store<N>(stages + ((s + 1) % 2) * kStageBytes + xc * kChunkBytes, xn);
      fence_shared_for_wgmma();
    }
    stage_barrier();  // this stage read by every warp; the next one written
  }
  if constexpr (kRing) copy_async_wait<0>();  // the zero fills past the end, before the block exits
  // (The bulk ring issues nothing past the end: every chunk it requests is taken.)

  if constexpr (kShareX) {  // each warpgroup's own rows, the cluster's K shares summed by block 0
    if constexpr (kCluster > 1) cluster_sum<N, kCluster, true>(acc, reinterpret_cast<float*>(wgmma_smem), rank, group, tid);
    if (live && rank == 0) write_tile<N / 8, kGrouped>(p, slice, tile, g, t, acc);
    return;
  }
  // The warpgroups' shares of K summed in a fixed order by warpgroup 0, in the stage memory.
  constexpr int kValues = N / 2;  // accumulators per thread
  if constexpr (kGroups > 1) {
    __syncthreads();
    float* share = reinterpret_cast<float*>(stages);  // [kValues][128 threads]
    if (group > 0) {
#pragma unroll
      for (int j = 0; j < kValues; ++j) share[j * 128 + tid] = acc[j / 4][j % 4];
    }
    __syncthreads();
    if (group == 0)
      for (int other = 1; other < kGroups; ++other) {
        const float* theirs = reinterpret_cast<const float*>(wgmma_smem + other * kWgmmaGroupBytes);
#pragma unroll
        for (int j = 0; j < kValues; ++j) acc[j / 4][j % 4] += theirs[j * 128 + tid];
      }
  }
  if constexpr (kCluster > 1) cluster_sum<N, kCluster>(acc, reinterpret_cast<float*>(wgmma_smem), rank, group, tid);
  if (group > 0 || rank > 0) return;
  if (live) write_tile<N / 8, kGrouped>(p, slice, tile, g, t, acc);
}

// Grid (row blocks, 1, kCluster), clusters of kCluster blocks along z: blockIdx.z is the rank.
template <int N, int kGroups, int kCluster, bool kRing = false>
__global__ void __launch_bounds__(kGroups * 128, 1) nvfp4_gemv_wgmma_kernel(GemvArgs p) {
  let_dependents_start();
  wgmma_slice<N, kGroups, false, true, kCluster, false, kRing>(p, Slice{p.packed, p.scales, p.tile_scales, 0, p.rows},
                                                               int(blockIdx.x), int(blockIdx.z));
}

// kGroups consecutive row blocks a block, sharing x (FP4LLM_WGMMA_SHARE_X): grid (row blocks /
// kGroups, 1, kCluster). With kCluster > 1 (FP4LLM_WGMMA_SHARE_X_CLUSTER) a cluster of that many
// blocks takes the same row blocks, K split over the blocks (blockIdx.z, the rank), one block a SM
// (the clusters' grid is sized for the SMs), so every register a thread may take.
template <int N, int kGroups, bool kRing = false, bool kWide = false, bool kOverlap = false, int kCluster = 1>
__global__ void __launch_bounds__(kGroups * 128, kCluster > 1 ? 1 : 4 / kGroups) nvfp4_gemv_wgmma_shared_x_kernel(GemvArgs p) {
  let_dependents_start();
  wgmma_slice<N, kGroups, false, true, kCluster, true, kRing, kWide, kOverlap>(
      p, Slice{p.packed, p.scales, p.tile_scales, 0, p.rows}, int(blockIdx.x) * kGroups, kCluster > 1 ? int(blockIdx.z) : 0);
}

// Expert groups of more than 64 rows (prefill; FP4LLM_EXPERTS_WGMMA=1): block (x, y, z) takes
// weight rows 64z.. of group y's expert for the group's slices of N routed rows x, x + X, ...
// (X = gridDim.x), one warpgroup on all of K. Looping over slices instead of a block per slice
// keeps the grid small: a prefill's largest group may hold every token, most groups a few
// slices, and each empty block still takes its shared memory to start. The slices are the
// fastest grid dimension so that the blocks reading the same weights run side by side (L2).
template <int N>
__global__ void __launch_bounds__(128, 1) nvfp4_experts_wgmma_kernel(GemvArgs p) {
  let_dependents_start();
  wait_for_producer();  // the groups are the routing kernel's
  const int group = int(blockIdx.y);
  if (group >= *p.num_groups) return;
  const int first = p.group_offset[group], last = p.group_offset[group + 1];
  Slice s = expert_slice(p, size_t(p.group_expert[group]), p.x_rows);
  for (s.begin = first + int(blockIdx.x) * N; s.begin < last; s.begin += int(gridDim.x) * N) {
    s.rows = min(N, last - s.begin);
    wgmma_slice<N, 1, true, false>(p, s, int(blockIdx.z));
    __syncthreads();  // the stage memory is rewritten by the next slice
  }
}

}  // namespace

}  // namespace fp4llm::cuda
