#include "backend/cpu/kv_calibration.hpp"

#include <algorithm>

#include "backend/cpu/cpu_backend.hpp"
#include "formats/number_formats.hpp"
#include "util/error.hpp"

namespace fp4llm::cpu {

namespace {

float amax_scale(const std::vector<float>& per_head) {
  const float amax = *std::max_element(per_head.begin(), per_head.end());
  return amax > 0 ? amax / kE4M3Max : 1.0f;  // an all-zero layer keeps the neutral scale
}

double head_ratio(const std::vector<float>& per_head) {
  const auto [lo, hi] = std::minmax_element(per_head.begin(), per_head.end());
  return *lo > 0 ? double(*hi / *lo) : 1.0;
}

}  // namespace

KvCalibration calibrate_kv_scales(const ModelWeights& weights, std::span<const int32_t> tokens,
                                  int64_t max_tokens) {
  const int64_t n = std::min<int64_t>(max_tokens, int64_t(tokens.size()));
  if (n <= 0) fail("KV-scale calibration needs at least one token of text");
  KvCacheConfig kv;
  kv.dtype = KvCacheDtype::Bf16;  // the values the FP8 cache would have to hold, unrounded
  kv.num_blocks = (n + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize;
  CpuBackend probe(weights, kv);
  std::vector<int32_t> table(static_cast<size_t>(kv.num_blocks));
  for (size_t b = 0; b < table.size(); ++b) table[b] = int32_t(b);
  ForwardBatch batch;
  batch.sequences.push_back({tokens.first(size_t(n)), 0, table});
  std::vector<float> logits;
  probe.forward(batch, logits);

  KvCalibration c;
  c.tokens = n;
  c.layers_prefix = weights.tensor_prefix + "layers.";
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    const auto& k = probe.kv_cache().k_amax()[l];
    const auto& v = probe.kv_cache().v_amax()[l];
    c.scales.push_back({amax_scale(k), amax_scale(v)});
    c.widest_head_ratio = std::max({c.widest_head_ratio, head_ratio(k), head_ratio(v)});
  }
  return c;
}

}  // namespace fp4llm::cpu
