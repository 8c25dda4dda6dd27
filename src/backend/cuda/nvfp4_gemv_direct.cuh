// The register-pipelined decode GEMV, which takes up to 16 rows (nvfp4_linear.cu), written
// against the instruction-issue bound of the copy ring (161 warp instructions per 576-byte chunk,
// H200, 2026-12-04): weights and scales go straight to registers with one 16-byte and one 2-byte
// load per lane per chunk, the next kGroup chunks requested before this group's arithmetic; x
// comes from L1 through pointers computed once per work item; chunks carry no bounds checks
// except K's ragged last chunk. Tokens past the slice read a valid row of x: their MMA columns
// are never written out. Expert groups wait for the routing kernel before anything else; plain
// products request their first weights before waiting for the kernel that writes x (which only
// matters when launched early, dependent_launch.cuh). An epilogue may finish the rows once every
// block has written them: the residual stream's next RMSNorm (gemv_norm_epilogue.cuh) or q/k
// norm, RoPE and the KV-cache write (gemv_rope_epilogue.cuh).
#pragma once

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/gemv_norm_epilogue.cuh"
#include "backend/cuda/gemv_lean_loop.cuh"
#include "backend/cuda/gemv_rope_epilogue.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/streaming_load.cuh"

namespace fp4llm::cuda {

namespace {


#ifndef FP4LLM_GEMV_DIRECT_BLOCKS
#define FP4LLM_GEMV_DIRECT_BLOCKS 3
#endif
// An active Epilogue (NormArgs, RopeArgs): every block, every warp included (and blocks of
// absent groups), stays until its count for it. kLean: the chunk loop of gemv_lean_loop.cuh.
template <int NT, bool kGrouped, class Epilogue = NoEpilogue, bool kLean = false>
__global__ void __launch_bounds__(kWarps * 32, NT == 1 ? (kLean ? 4 : FP4LLM_GEMV_DIRECT_BLOCKS) : (kLean ? 3 : 2)) nvfp4_gemv_direct_kernel(GemvArgs p, Epilogue epilogue) {
  Slice s;
  if (!enter_block<NT, kGrouped>(p, s, epilogue)) return;
  const WorkItem item(p);
  const auto [lane, warp, g, t, tile, split, begin, end, live] = item;
  const uint4* wl = s.packed + (size_t(tile) * p.k_chunks + begin) * 32 + lane;
  const uint16_t* sl = s.scales + (size_t(tile) * p.k_chunks + begin) * 32 + lane;
  float acc[NT][4] = {};
  if constexpr (kLean) {
    lean_item<NT, kGrouped>(p, s, item, wl, sl, acc);
  } else {
    const int n = end - begin;
    uint4 wn[kGroup];
    uint32_t sn[kGroup];
#pragma unroll
    for (int u = 0; u < kGroup; ++u)
      if (u < n) wn[u] = load_streaming(wl + u * 32), sn[u] = load_streaming(sl + u * 32);
    if constexpr (!kGrouped) wait_for_producer();  // weights are in flight; x is the producer's output
    const uint4* xl[NT];
    x_pointers<NT, kGrouped>(p, s, g, t, begin, xl);
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
        item_chunk_mma<NT>(acc, w[u], sc[u], xl, c + u, begin, p.k, t);
      }
    }
  }
  finish_item<NT, kGrouped>(p, s, item, acc, epilogue);
}

}  // namespace

}  // namespace fp4llm::cuda
