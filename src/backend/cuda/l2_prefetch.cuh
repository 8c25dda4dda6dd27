// A block's share of a weight asked of L2 ahead of its use (FP4LLM_L2_AHEAD, l2_ahead.hpp): one
// thread, two bulk prefetches (sm_90's cp.async.bulk.prefetch.L2, a hint: nothing is returned
// and nothing waits for it). Nothing on GPUs before sm_90.
#pragma once

#include <cstdint>

#include "backend/cuda/l2_ahead.hpp"

namespace fp4llm::cuda {

// `bytes` bytes from `p`: both 16-byte aligned, a multiple of 16.
__device__ __forceinline__ void prefetch_l2_bulk(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(__cvta_generic_to_global(p)), "r"(bytes) : "memory");
#endif
}

// Slots [first, first + count) of a weight's 16-byte slots and their 2-byte scales.
__device__ __forceinline__ void prefetch_slots_l2(const uint4* packed, const uint16_t* scales, size_t first, size_t count) {
  prefetch_l2_bulk(packed + first, uint32_t(count * sizeof(uint4)));
  prefetch_l2_bulk(scales + first, uint32_t(count * sizeof(uint16_t)));
}

// This block's share (l2_share over the whole grid) of the `slots` 16-byte weight slots at packed
// and their 2-byte scales; nothing when packed is null.
__device__ __forceinline__ void request_share_to_l2(const uint4* packed, const uint16_t* scales, uint32_t slots) {
  if (!packed || threadIdx.x != 0) return;
  const uint32_t blocks = gridDim.x * gridDim.y * gridDim.z;
  const uint32_t block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const L2Share share = l2_share(slots, blocks, block);
  if (share.count > 0) prefetch_slots_l2(packed, scales, share.first, share.count);
}

// This block's share (l2_share over grid x: the blocks of one expert group) of expert `expert`'s
// `slots` weight slots in stacked experts' arrays (FP4LLM_L2_AHEAD=down).
__device__ __forceinline__ void request_expert_share_to_l2(const uint4* packed, const uint16_t* scales, uint32_t slots,
                                                           size_t expert) {
  if (!packed || threadIdx.x != 0) return;
  const L2Share share = l2_share(slots, gridDim.x, blockIdx.x);
  if (share.count > 0) prefetch_slots_l2(packed, scales, expert * slots + share.first, share.count);
}

// Tiles [first, first + count) of a weight (clamped to its row_tiles), every chunk, from one
// thread: a block's own weights, contiguous in the tile layout (FP4LLM_L2_AHEAD=gate_up).
__device__ __forceinline__ void request_tiles_to_l2(const uint4* packed, const uint16_t* scales, int first, int count,
                                                    int row_tiles, int k_chunks) {
  if (threadIdx.x != 0 || first >= row_tiles) return;
  prefetch_slots_l2(packed, scales, size_t(first) * k_chunks * 32, size_t(min(count, row_tiles - first)) * k_chunks * 32);
}

}  // namespace fp4llm::cuda
