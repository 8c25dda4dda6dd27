// Where a key's row sits in one layer's paged K or V cache: blocks of kCacheBlockSlots slots, a
// token's slot s lying in block s / 16. Two orders within a block, chosen once per process
// (FP4LLM_KV_LAYOUT):
// - slot-major (the default): [block][slot][kv head][head_dim]. A kv head's 16 keys of a block are
//   16 runs of head_dim elements, kv_heads * head_dim apart: 128-byte pieces with an FP8 cache at
//   head_dim 128.
// - head-major (`head_major`): [block][kv head][slot][head_dim]. A kv head's 16 keys of a block are
//   one run (2 KB for FP8 at head_dim 128), which a decode warp reads whole. At 32k keys the FP8
//   decode attention reads 64% of the copy bandwidth and the BF16 one, with runs twice as long,
//   81% (H100, 2026-12-06); more loads in flight did not help, so the DRAM pattern is next to try.
// Every kernel that reads or writes the cache takes its offsets from here.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace fp4llm::cuda {

inline constexpr int64_t kCacheBlockSlots = 16;

// Element offset of slot `slot`'s row of kv head `kv_head`.
__host__ __device__ inline int64_t cache_row_offset(int64_t slot, int64_t kv_head, int64_t kv_heads, int64_t head_dim,
                                                    bool head_major) {
  if (head_major)
    return ((slot / kCacheBlockSlots * kv_heads + kv_head) * kCacheBlockSlots + slot % kCacheBlockSlots) * head_dim;
  return (slot * kv_heads + kv_head) * head_dim;
}

// Elements between the rows of consecutive slots of one kv head within a block.
__host__ __device__ inline int64_t cache_slot_stride(int64_t kv_heads, int64_t head_dim, bool head_major) {
  return head_major ? head_dim : kv_heads * head_dim;
}

// FP4LLM_KV_LAYOUT=head_major selects the head-major order; slot-major otherwise (head-major measured
// no faster, H100 2026-12-06: 32k FP8 decode attention 1,234 against 1,252 us a step, batch 1 and
// prefill within a percent).
bool kv_cache_head_major();

}  // namespace fp4llm::cuda
