// The decode GEMV for up to 16 rows with the weights and scales brought in by bulk copies
// (cp.async.bulk, sm_90), written against the memory-parallelism bound of the direct kernel: at
// batch 1 it keeps about 1 KB per warp in flight in registers (two chunks ahead), about what
// Little's law asks of an SM at 4.3 TB/s, and its GEMVs reach 44% of DRAM bandwidth
// (docs/PERFORMANCE.md). Here one lane per warp keeps kBulkStages stages of kBulkChunks chunks
// in flight in shared memory without registers or per-lane load instructions; the stages
// complete on mbarriers, and the lanes read their 16 weight bytes and 2 scale bytes of a chunk
// from shared memory. The arithmetic, x loads, split sum and epilogue are the direct kernel's.
// FP4LLM_GEMV_KERNEL=bulk selects it (not yet run on a GPU); sm_90 only.
#pragma once

#include <cuda/ptx>

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/gemv_norm_epilogue.cuh"
#include "backend/cuda/gemv_rope_epilogue.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"

namespace fp4llm::cuda {

namespace {

#ifndef FP4LLM_GEMV_BULK_STAGES
#define FP4LLM_GEMV_BULK_STAGES 4
#endif
#ifndef FP4LLM_GEMV_BULK_CHUNKS
#define FP4LLM_GEMV_BULK_CHUNKS 2
#endif
#ifndef FP4LLM_GEMV_BULK_BLOCKS
#define FP4LLM_GEMV_BULK_BLOCKS 3
#endif
constexpr int kBulkStages = FP4LLM_GEMV_BULK_STAGES, kBulkChunks = FP4LLM_GEMV_BULK_CHUNKS;

// One warp's ring: stage st holds chunks [first, first + kBulkChunks) of its K range, weights
// (512 bytes a chunk) and scales (64 bytes a chunk) each contiguous in the tile layout.
struct alignas(16) BulkRing {
  uint4 w[kBulkStages][kBulkChunks][32];
  uint16_t s[kBulkStages][kBulkChunks][32];
  uint64_t bar[kBulkStages];
};
// With sum_splits' own array (NT = 2 at most) beside them.
static_assert(kWarps * sizeof(BulkRing) + kWarps * 2 * 4 * 32 * sizeof(float) <= 48 * 1024,
              "the rings must fit static shared memory");

// Lane 0: group `group` of the warp's n chunks into stage st, completing on its barrier.
__device__ __forceinline__ void bulk_issue(BulkRing& ring, int st, const uint4* w, const uint16_t* s, int group, int n) {
  namespace ptx = ::cuda::ptx;
  const int first = group * kBulkChunks, count = min(kBulkChunks, n - first);
  const uint32_t w_bytes = uint32_t(count) * 512u, s_bytes = uint32_t(count) * 64u;
  ptx::mbarrier_arrive_expect_tx(ptx::sem_release, ptx::scope_cta, ptx::space_shared, &ring.bar[st], w_bytes + s_bytes);
  ptx::cp_async_bulk(ptx::space_cluster, ptx::space_global, &ring.w[st][0][0], w + size_t(first) * 32, w_bytes,
                     &ring.bar[st]);
  ptx::cp_async_bulk(ptx::space_cluster, ptx::space_global, &ring.s[st][0][0], s + size_t(first) * 32, s_bytes,
                     &ring.bar[st]);
}

// An active Epilogue (gemv_norm_epilogue.cuh, gemv_rope_epilogue.cuh) as in the direct kernel.
template <int NT, bool kGrouped, class Epilogue = NoEpilogue>
__global__ void __launch_bounds__(kWarps * 32, NT == 1 ? FP4LLM_GEMV_BULK_BLOCKS : 2) nvfp4_gemv_bulk_kernel(GemvArgs p,
                                                                                                      Epilogue epilogue) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();  // dispatched on sm_90 and later only (nvfp4_linear.cu)
#else
  namespace ptx = ::cuda::ptx;
  __shared__ BulkRing rings[kWarps];
  Slice s;
  if (!enter_block<NT, kGrouped>(p, s, epilogue)) return;
  const WorkItem item(p);
  const auto [lane, warp, g, t, tile, split, begin, end, live] = item;
  BulkRing& ring = rings[warp];
  const int n = end - begin, groups = (n + kBulkChunks - 1) / kBulkChunks;
  const uint4* wl = s.packed + (size_t(tile) * p.k_chunks + begin) * 32;
  const uint16_t* sl = s.scales + (size_t(tile) * p.k_chunks + begin) * 32;
  if (lane == 0) {
    for (int st = 0; st < kBulkStages; ++st) ptx::mbarrier_init(&ring.bar[st], 1);
    ptx::fence_mbarrier_init(ptx::sem_release, ptx::scope_cluster);  // the barriers, before the copies use them
    for (int gi = 0; gi < kBulkStages && gi < groups; ++gi) bulk_issue(ring, gi, wl, sl, gi, n);
  }
  __syncwarp();
  if constexpr (!kGrouped) wait_for_producer();  // weights are in flight; x is the producer's output
  const uint4* xq[NT];  // this lane's x of the current group's first chunk
  x_pointers<NT, kGrouped>(p, s, g, t, begin, xq);
  float acc[NT][4] = {};
  const auto wait_stage = [&](int gi) {
    while (!ptx::mbarrier_try_wait_parity(&ring.bar[gi % kBulkStages], uint32_t((gi / kBulkStages) & 1))) {
    }
  };
  const auto refill = [&](int gi) {  // stage gi % kBulkStages read by every lane: its next group
    __syncwarp();
    if (lane == 0 && gi + kBulkStages < groups) {
      ptx::fence_proxy_async(ptx::space_shared);  // those reads, before the copy's writes
      bulk_issue(ring, gi % kBulkStages, wl, sl, gi + kBulkStages, n);
    }
  };
  // Whole groups before K's ragged last chunk: x unchecked through running pointers (as the
  // direct kernel's lean loop, gemv_lean_loop.cuh); then the rest with the checked steps.
  const int unchecked = max(0, min(n, p.k / 64 - begin));
  int gi = 0;
  for (; (gi + 1) * kBulkChunks <= unchecked; ++gi) {
    const int st = gi % kBulkStages;
    wait_stage(gi);
#pragma unroll
    for (int u = 0; u < kBulkChunks; ++u) chunk_mma<NT>(acc, ring.w[st][u][lane], ring.s[st][u][lane], x_unchecked<NT>(xq, u));
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) xq[nt] += kBulkChunks * 8;
    refill(gi);
  }
  const int from = gi * kBulkChunks;
  for (; gi < groups; ++gi) {
    const int st = gi % kBulkStages;
    wait_stage(gi);
#pragma unroll
    for (int u = 0; u < kBulkChunks; ++u) {
      const int c = gi * kBulkChunks + u;
      if (c >= n) break;
      item_chunk_mma<NT>(acc, ring.w[st][u][lane], ring.s[st][u][lane], xq, c - from, begin + from, p.k, t);
    }
    refill(gi);
  }
  finish_item<NT, kGrouped>(p, s, item, acc, epilogue);
#endif
}

}  // namespace

}  // namespace fp4llm::cuda
