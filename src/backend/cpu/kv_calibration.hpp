// FP8 KV-cache scales calibrated on a text: one pass of the CPU backend with a BF16 cache, then
// amax / 448 per layer for K and for V (docs/ACCURACY.md measures why per layer is enough).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "model/model_weights.hpp"

namespace fp4llm::cpu {

struct KvCalibration {
  std::vector<KvCacheScales> scales;  // per layer
  std::string layers_prefix;          // the layers' tensor names start with this + N, e.g. "model.layers."
  int64_t tokens = 0;                 // tokens the pass saw
  double widest_head_ratio = 1;       // largest amax ratio between two KV heads of one layer
};

// Runs `tokens` (at most max_tokens of them) through the model; fails when there are none.
KvCalibration calibrate_kv_scales(const ModelWeights& weights, std::span<const int32_t> tokens,
                                  int64_t max_tokens);

}  // namespace fp4llm::cpu
