// The copy-ring decode GEMV: each warp streams its work item through a ring of cp.async copies.
// It serves more than 16 rows (and every row count with FP4LLM_GEMV_KERNEL=ring).
#pragma once

#include "backend/cuda/copy_async.cuh"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"

namespace fp4llm::cuda {

namespace {

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

// Decode-shape NVFP4 GEMM, written against the memory bound: each weight byte is read once. Each
// warp streams one (tile, K split) work item through its own ring of asynchronous copies
// (kStages x kStageChunks chunks in flight, no registers held), dequantizes each chunk in
// registers and feeds BF16 tensor cores with FP32 accumulation. A block holds kWarps / splits
// tiles, so the splits of a tile meet in shared memory and nothing crosses blocks. With expert
// groups (MoE) the grid's y and z dimensions run over groups and slices of their rows.
template <int NT, bool kGrouped, bool kSkipPadded = false>
__global__ void __launch_bounds__(kWarps * 32) nvfp4_gemv_kernel(GemvArgs p) {
  let_dependents_start();
  wait_for_producer();  // launched early (FP4LLM_PDL=all): x and the groups are earlier kernels'
  Slice s;
  if (!block_slice<NT, kGrouped>(p, s)) return;  // uniform over the block, before any barrier
  const auto [lane, warp, g, t, tile, split, begin, end, live] = WorkItem(p);
  const uint4* wp = s.packed + size_t(tile) * p.k_chunks * 32;
  const uint16_t* sp = s.scales + size_t(tile) * p.k_chunks * 32;
  int x_row[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int r = nt * 8 + g;
    x_row[nt] = r >= s.rows ? -1 : kGrouped && s.x_rows ? s.x_rows[s.begin + r] : s.begin + r;
  }
  extern __shared__ uint4 dynamic_smem[];
  WarpRing& ring = reinterpret_cast<WarpRing*>(dynamic_smem)[warp];
  float acc[NT][4] = {};
  const int live_groups = live_token_groups<NT, kSkipPadded>(s.rows);
#pragma unroll
  for (int st = 0; st < kStages; ++st) issue_stage(ring, st, wp, sp, begin + st * kStageChunks, end, lane);
  for (int c0 = begin, st = 0; c0 < end; c0 += kStageChunks, st = (st + 1) % kStages) {
    copy_async_wait<kStages - 1>();  // this lane's copies of stage `st` have landed
    __syncwarp();                    // ... and every other lane's
    uint4 w[kStageChunks];
    uint32_t sc[kStageChunks];
#pragma unroll
    for (int u = 0; u < kStageChunks; ++u) w[u] = ring.w[st][u][lane], sc[u] = ring.s[st][u][lane];
    __syncwarp();  // the stage is read: refill it
    issue_stage(ring, st, wp, sp, c0 + kStages * kStageChunks, end, lane);
#pragma unroll
    for (int u = 0; u < kStageChunks; ++u) {
      if (c0 + u >= end) continue;
      XFrag<NT> x;
      load_x(x, p, x_row, c0 + u, c0 + u + 1, t, live_groups);  // in range: checked above
      chunk_mma<NT>(acc, w[u], sc[u], x, live_groups);
    }
  }
  if (!sum_splits<NT>(acc, p.splits, warp, split, lane)) return;
  if (live) write_tile<NT, kGrouped>(p, s, tile, g, t, acc);
}

}  // namespace

}  // namespace fp4llm::cuda
