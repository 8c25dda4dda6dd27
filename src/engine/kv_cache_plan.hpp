// How many paged KV blocks the serving engine gets and how long a sequence may be: from
// --kv-cache-memory (a byte budget, the CPU's way) and --max-model-len. Every layer keeps K/V
// for every position in the paged cache (sliding-window layers included; see docs/SERVING.md),
// so a block costs layers x 2 x kv_heads x head_dim x 16 elements.
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
};

struct KvCachePlan {
  KvCacheConfig cache;
  int64_t max_model_len = 0;
  uint64_t bytes_per_block = 0;
  uint64_t bytes() const { return bytes_per_block * uint64_t(cache.num_blocks); }
  int64_t tokens() const { return cache.num_blocks * KvCacheConfig::kBlockSize; }
  std::string describe(const ModelConfig& config) const;
};

// Throws Error when the budget holds no block or less than --max-model-len tokens, or when
// --max-model-len exceeds the model's max_position_embeddings.
KvCachePlan plan_kv_cache(const ModelConfig& config, const KvCacheOptions& options);

uint64_t kv_block_bytes(const ModelConfig& config, KvCacheDtype dtype);

// "2GiB", "512MiB", "1.5GB", "1000000" (bytes) -> bytes. Throws Error on anything else.
uint64_t parse_byte_size(std::string_view text);

}  // namespace fp4llm
