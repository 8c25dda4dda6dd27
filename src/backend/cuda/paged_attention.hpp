// Attention over the paged KV cache for every new token of a step (decode and chunked prefill
// alike): causal, GQA-aware (one read of a key serves the whole query group), sliding windows
// read only their window, long contexts split across blocks (flash-decoding) and merged by the
// last split block to finish.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/layer_kernels.hpp"

namespace fp4llm::cuda {

// The split merges (split_kv.cuh; FP4LLM_ATTN_SPLIT_MERGE): by rows is the default; chain and
// two_pass are the former ones, kept to compare.
enum class SplitMerge : int64_t { kByRows, kChain, kTwoPass };

struct AttentionParams {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  int64_t window = 0;          // sliding layers: keys in (pos - window, pos]; 0: all of [0, pos]
  float scale = 1.0f;          // softmax scale
  bool fp8 = true;             // cache dtype: FP8 E4M3 (with k/v scales) or BF16
  bool head_major_cache = false;  // the cache blocks' order (kv_cache_layout.hpp)
  float k_scale = 1.0f, v_scale = 1.0f;
  int64_t max_blocks = 0;      // row length of `block_tables`
  int64_t splits = 1;          // key-range splits per (token, kv head); each token divides its
                               // own range into `splits` multiples of 32 keys
  int64_t min_split_keys = 256;  // ... of at least this many keys (a multiple of 32)
  SplitMerge split_merge = SplitMerge::kByRows;  // how the last split merges them
  // Decode steps with one token per sequence (FP4LLM_ATTN_EARLY_BLOCKS, on; the key-rows kernel):
  // the attention launches early and each warp requests its first cache blocks before waiting
  // for the rope kernel, all but the block holding the token's own key (that kernel's write),
  // which it requests after the wait. No other key a token reads is written in such a step.
  bool cache_blocks_before_wait = false;
};

// Query heads a kv head's by-rows merge holds (the largest group any decode kernel takes).
inline constexpr int kMaxSplitMergeRows = 32;

struct AttentionWorkspace {
  float* partial_out = nullptr;  // [tokens, heads, splits, head_dim]
  float* partial_ml = nullptr;   // [tokens, heads, splits, 2]: running max and sum
  unsigned* counters = nullptr;  // [tokens, kv_heads]: splits finished; zero between launches
};

// Largest query group (heads per kv head) the kernel holds for a head_dim.
int64_t max_query_group(int64_t head_dim);

// q: [tokens, heads, head_dim] float32. positions[t] is the token's position; block_tables has
// one row per sequence, token_seq[t] picks it. out: [tokens, heads * head_dim] BF16.
void paged_attention(const float* q, const void* k_cache, const void* v_cache, const int32_t* positions,
                     const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                     const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                     cudaStream_t stream);

// The same contract on tensor cores (mma_decode_attention.cu), for head_dim 64 and 128 and query
// groups up to 16: the backend's default for decode where it applies.
bool mma_decode_attention_supports(const AttentionParams& p);
void mma_decode_attention(const float* q, const void* k_cache, const void* v_cache, const int32_t* positions,
                          const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                          const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                          cudaStream_t stream);

// The same taking in the rope kernel's work (q/k RMSNorm, RoPE, the cache write;
// attention_rope.cuh, FP4LLM_ROPE_IN_ATTENTION=1), for decode steps whose tokens are each their
// sequence's only new token. qkv: [tokens, (heads + 2 kv_heads) * head_dim], the raw products;
// io.q is not used. Built for head_dim 256 (smaller heads take the tensor-core kernel).
bool paged_attention_takes_rope(const AttentionParams& p);
void paged_attention_with_rope(const float* qkv, const RopeCacheParams& rp, const RopeCacheIo& io,
                               const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                               const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                               cudaStream_t stream);

// The tensor-core kernel taking in the rope kernel's work (q/k RMSNorm, RoPE, the cache write;
// attention_rope.cuh, FP4LLM_ROPE_IN_ATTENTION=1), for decode steps whose tokens are each their
// sequence's only new token. qkv: [tokens, (heads + 2 kv_heads) * head_dim], the raw products;
// io.q is not used. Supported where the tensor-core kernel is (mma_decode_attention_supports).
void mma_decode_attention_with_rope(const float* qkv, const RopeCacheParams& rp, const RopeCacheIo& io,
                                    const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                                    const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                                    cudaStream_t stream);

}  // namespace fp4llm::cuda
