// The paged KV cache of the CPU backend: per layer, K and V as [block, slot, kv_head, head_dim]
// in FP8 E4M3 (stored = sat(x / scale), read = stored * scale, one scale per layer and K/V) or
// BF16. The same layout the CUDA backend uses by default (kv_cache_layout.hpp). With a window
// pool the sliding-window layers hold num_window_blocks blocks, the others num_blocks.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "io/checkpoint.hpp"

namespace fp4llm::cpu {

class KvCache {
 public:
  KvCache(const ModelConfig& config, const KvCacheConfig& cache, std::vector<KvCacheScales> scales);

  // Stores the K and V vectors (kv_heads * head_dim floats each) of one token.
  void write(int64_t layer, int64_t block, int64_t slot, const float* k, const float* v);
  // Reads back one token's K or V of one kv head.
  void read_k(int64_t layer, int64_t block, int64_t slot, int64_t head, float* out) const;
  void read_v(int64_t layer, int64_t block, int64_t slot, int64_t head, float* out) const;

  const KvCacheConfig& config() const { return cache_; }
  // Largest |K| and |V| written so far, per layer and kv head: what an FP8 scale must cover
  // (calibration of KV scales, `fp4llm eval --kv-scales calibrate`).
  const std::vector<std::vector<float>>& k_amax() const { return k_amax_; }
  const std::vector<std::vector<float>>& v_amax() const { return v_amax_; }
  uint64_t bytes() const;

 private:
  size_t offset(int64_t layer, int64_t block, int64_t slot, int64_t head) const;
  void store(std::vector<uint8_t>& dst, size_t at, const float* x, float scale);
  void load(const std::vector<uint8_t>& src, size_t at, float scale, float* out) const;

  int64_t kv_heads_, head_dim_;
  KvCacheConfig cache_;
  std::vector<KvCacheScales> scales_;  // per layer
  std::vector<int64_t> layer_blocks_;
  std::vector<std::vector<uint8_t>> k_, v_;
  std::vector<std::vector<float>> k_amax_, v_amax_;  // [layer][kv head]
};

}  // namespace fp4llm::cpu
