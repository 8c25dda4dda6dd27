// L2 run-ahead for the direct decode GEMV (FP4LLM_GEMV_L2_AHEAD=D; off by default until
// measured). The direct kernel keeps two chunks per lane in registers ahead of its arithmetic,
// about 1 KB per warp in flight, and its small matrices reach 24-35% of DRAM bandwidth
// (docs/PERFORMANCE.md, fifth round): Little's law wants more bytes in flight than registers
// can hold. Here the warp also asks L2 for its chunks D ahead of the register loads, so those
// loads meet L2's latency instead of DRAM's. One prefetch instruction covers a group of chunks:
// five lanes per chunk, one 128-byte line each (four of weights, one holding the scales), so
// the cost is a few instructions per group against about 250 for its arithmetic. (A bulk L2
// prefetch by one lane needs warp-uniform operands; with per-warp addresses the compiler wraps
// it in a loop over lanes that cost 18 instructions per chunk in the SASS.) A prefetch is a
// hint: it changes no result, only where the later loads find their bytes. With D chunks per
// warp the L2 holds about D x 576 bytes per resident warp (about 15 MB at D = 8 on 132 SMs),
// well inside its 50 MB. Launched early (FP4LLM_PDL=all), the first requests go out before the
// kernel waits for its producer, so the weights stream while attention or a norm still runs.
#pragma once

#include <cstdint>

namespace fp4llm::cuda {

namespace {

__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p)); }

// This lane's line of each chunk of a warp's K range (chunk c: 512 weight bytes at w + c * 32,
// 64 scale bytes at s + c * 32, nvfp4_tiles.hpp), for groups of kChunks chunks.
template <int kChunks>
struct L2RunAhead {
  static_assert(5 * kChunks <= 32, "five lanes per chunk");
  const char* line;  // this lane's line of the range's chunk 0
  uint32_t stride;   // bytes from one chunk's line to the next
  int chunk, n;      // which chunk of a group this lane serves (past the group: none); the range's chunks

  __device__ __forceinline__ L2RunAhead(const uint4* w, const uint16_t* s, int n_chunks, int lane)
      : line(lane % 5 < 4 ? reinterpret_cast<const char*>(w) + (lane % 5) * 128 : reinterpret_cast<const char*>(s)),
        stride(lane % 5 < 4 ? 512u : 64u), chunk(lane < 5 * kChunks ? lane / 5 : n_chunks), n(n_chunks) {}

  // Chunks [first, first + kChunks) ∩ [0, n).
  __device__ __forceinline__ void request(int first) const {
    const int c = first + chunk;
    if (c < n) prefetch_l2(line + size_t(c) * stride);
  }
};

}  // namespace

}  // namespace fp4llm::cuda
