#include "backend/cpu/cpu_kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/number_formats.hpp"
#include "util/error.hpp"

namespace fp4llm::cpu {

namespace {
size_t element_bytes(KvCacheDtype t) { return t == KvCacheDtype::Fp8E4M3 ? 1 : 2; }
}  // namespace

KvCache::KvCache(const ModelConfig& config, const KvCacheConfig& cache,
                 std::vector<KvCacheScales> scales)
    : kv_heads_(config.num_kv_heads), head_dim_(config.head_dim), cache_(cache),
      scales_(std::move(scales)) {
  if (int64_t(scales_.size()) != config.num_layers) fail("KV cache: one scale pair per layer needed");
  const size_t per_block = size_t(KvCacheConfig::kBlockSize * kv_heads_ * head_dim_) * element_bytes(cache.dtype);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const bool windowed = cache.has_window_pool() && config.layer_sliding[size_t(l)];
    layer_blocks_.push_back(windowed ? cache.num_window_blocks : cache.num_blocks);
    k_.emplace_back(per_block * size_t(layer_blocks_.back()));  // zeroed: finite data (SequenceChunk)
    v_.emplace_back(per_block * size_t(layer_blocks_.back()));
  }
  k_amax_.assign(size_t(config.num_layers), std::vector<float>(size_t(kv_heads_), 0.0f));
  v_amax_.assign(size_t(config.num_layers), std::vector<float>(size_t(kv_heads_), 0.0f));
}

uint64_t KvCache::bytes() const {
  uint64_t total = 0;
  for (size_t l = 0; l < k_.size(); ++l) total += k_[l].size() + v_[l].size();
  return total;
}

size_t KvCache::offset(int64_t layer, int64_t block, int64_t slot, int64_t head) const {
  if (block < 0 || block >= layer_blocks_[size_t(layer)]) fail("KV cache block {} of layer {} out of range", block, layer);
  return size_t(((block * KvCacheConfig::kBlockSize + slot) * kv_heads_ + head) * head_dim_) *
         element_bytes(cache_.dtype);
}

void KvCache::store(std::vector<uint8_t>& dst, size_t at, const float* x, float scale) {
  for (int64_t i = 0; i < head_dim_; ++i) {
    if (cache_.dtype == KvCacheDtype::Fp8E4M3) {
      dst[at + size_t(i)] = float_to_e4m3(x[i] / scale);
    } else {
      const uint16_t b = float_to_bf16(x[i]);
      std::memcpy(&dst[at + 2 * size_t(i)], &b, 2);
    }
  }
}

void KvCache::load(const std::vector<uint8_t>& src, size_t at, float scale, float* out) const {
  for (int64_t i = 0; i < head_dim_; ++i) {
    if (cache_.dtype == KvCacheDtype::Fp8E4M3) {
      out[i] = e4m3_to_float(src[at + size_t(i)]) * scale;
    } else {
      uint16_t b;
      std::memcpy(&b, &src[at + 2 * size_t(i)], 2);
      out[i] = bf16_to_float(b);
    }
  }
}

void KvCache::write(int64_t layer, int64_t block, int64_t slot, const float* k, const float* v) {
  for (int64_t h = 0; h < kv_heads_; ++h) {
    for (int64_t i = 0; i < head_dim_; ++i) {
      float& ka = k_amax_[size_t(layer)][size_t(h)];
      float& va = v_amax_[size_t(layer)][size_t(h)];
      ka = std::max(ka, std::fabs(k[h * head_dim_ + i]));
      va = std::max(va, std::fabs(v[h * head_dim_ + i]));
    }
    store(k_[size_t(layer)], offset(layer, block, slot, h), k + h * head_dim_, scales_[size_t(layer)].k);
    store(v_[size_t(layer)], offset(layer, block, slot, h), v + h * head_dim_, scales_[size_t(layer)].v);
  }
}

void KvCache::read_k(int64_t layer, int64_t block, int64_t slot, int64_t head, float* out) const {
  load(k_[size_t(layer)], offset(layer, block, slot, head), scales_[size_t(layer)].k, out);
}

void KvCache::read_v(int64_t layer, int64_t block, int64_t slot, int64_t head, float* out) const {
  load(v_[size_t(layer)], offset(layer, block, slot, head), scales_[size_t(layer)].v, out);
}

}  // namespace fp4llm::cpu
