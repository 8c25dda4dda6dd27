// How many paged KV blocks the serving engine gets and how long a sequence may be: from
// --kv-cache-memory (a byte budget, the CPU's way) and --max-model-len. A block of the main pool
// costs layers x 2 x kv_heads x head_dim x 16 elements. Models with sliding-window layers get a
// window pool for those layers, sized for every running sequence's window plus a step's tokens
// (the most that the scheduler can hold at once); the main pool then holds only the
// full-attention layers and gets the rest of the budget. When that leaves the main pool fewer
// blocks than the window pool, both get the same count (no sequence can then hold more window
// blocks than main ones). docs/SERVING.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backend/backend.hpp"
#include "model/model_config.hpp"

namespace fp4llm {

struct KvCacheOptions {
  std::string device = "cpu";
  KvCacheDtype dtype = KvCacheDtype::Fp8E4M3;
  uint64_t memory_bytes = 0;             // the cache's budget
  std::optional<int64_t> max_model_len;  // default: the model's, capped by the cache
  bool window_pool = true;               // false: sliding layers keep every position too
  int64_t max_num_seqs = 1, max_num_batched_tokens = 2048;  // the scheduler's, for the window pool
};

struct KvCachePlan {
  KvCacheConfig cache;
  int64_t max_model_len = 0;
  uint64_t bytes_per_block = 0, bytes_per_window_block = 0;
  uint64_t bytes() const {
    return bytes_per_block * uint64_t(cache.num_blocks) + bytes_per_window_block * uint64_t(cache.num_window_blocks);
  }
  int64_t tokens() const { return cache.num_blocks * KvCacheConfig::kBlockSize; }
  std::string describe(const ModelConfig& config) const;
};

// Throws Error when the budget holds no block or less than --max-model-len tokens, or when
// --max-model-len exceeds the model's max_position_embeddings.
KvCachePlan plan_kv_cache(const ModelConfig& config, const KvCacheOptions& options);

// One block of `layers` layers.
uint64_t kv_block_bytes(const ModelConfig& config, KvCacheDtype dtype, int64_t layers);
// The window pool's blocks that `max_num_seqs` sequences can hold at once, each with its window
// and their chunks of one step (at most max_num_batched_tokens together): window_blocks_needed
// summed over the worst case.
int64_t window_pool_blocks(int64_t sliding_window, int64_t max_num_seqs, int64_t max_num_batched_tokens);

// "2GiB", "512MiB", "1.5GB", "1000000" (bytes) -> bytes. Throws Error on anything else.
uint64_t parse_byte_size(std::string_view text);

}  // namespace fp4llm
