// Prefill attention on tensor cores (flash-attention style): for steps with many new tokens,
// tiles of up to 64 query tokens of one sequence and one head stream the sequence's keys from
// the paged cache in tiles of 64, converted to BF16 in shared memory; QK^T and PV run as
// m16n8k16 BF16 MMAs with FP32 accumulation and an online softmax in FP32. Causal and
// sliding-window masks are applied per element; tiles wholly outside the window are skipped.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/paged_attention.hpp"
#include "backend/cuda/query_tiles.hpp"

namespace fp4llm::cuda {

// Same inputs and output as paged_attention (AttentionParams.splits is ignored), plus the tiles
// (QueryTilePlan::longest_first's order: blocks start in it).
void flash_prefill_attention(const float* q, const void* k_cache, const void* v_cache, const int32_t* positions,
                             const int32_t* token_seq, const int32_t* block_tables, const QueryTile* tiles,
                             int64_t num_tiles, const AttentionParams& p, __nv_bfloat16* out, cudaStream_t stream);

// The same with the rope kernel's work on the queries (FP4LLM_FLASH_ROPE, where
// flash_prefill_takes_rope): they come raw from the q|k|v rows and each block normalises and
// rotates its own, so they are read once instead of read, rotated, written as float32 and read
// again. The keys and values must already be in the cache: rope_and_cache with a null io.q.
void flash_prefill_attention_with_rope(const float* qkv, const RopeCacheParams& rp, const RopeCacheIo& io,
                                       const int32_t* token_seq, const int32_t* block_tables, const QueryTile* tiles,
                                       int64_t num_tiles, const AttentionParams& p, __nv_bfloat16* out,
                                       cudaStream_t stream);

// Whether the kernel flash_prefill_attention picks for these heads takes the queries' rope: the
// default sm_90 one (pipelined, scores on warpgroup MMAs; head_dim 64 and 128).
bool flash_prefill_takes_rope(const AttentionParams& p);

}  // namespace fp4llm::cuda
