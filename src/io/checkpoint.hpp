// Loading a Hugging Face model folder into the canonical weight set, whatever its format:
// ModelOpt NVFP4, compressed-tensors NVFP4, or plain BF16/F16/F32 (quantized at load).
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/nvfp4_scale_search.hpp"
#include "io/quant_scheme.hpp"
#include "model/weights.hpp"

namespace fp4llm {

// Per-tensor FP8 KV cache scales: stored fp8 = sat(x / scale), loaded x = fp8 * scale.
struct KvCacheScales {
  float k = 1.0f;
  float v = 1.0f;
};

struct LoadOptions {
  std::vector<std::string> exclude;  // plain checkpoints: extra modules kept in 16 bits
  bool progress = true;
  // Plain and GGUF checkpoints: keep projections 16-bit instead of quantizing them, for the
  // reference model of `fp4llm eval` (never for serving: fp4llm has no 16-bit path).
  bool keep_16bit = false;
  // Plain and GGUF checkpoints: how NVFP4 block scales are chosen when quantizing at load.
  Nvfp4ScaleRule scale_rule = Nvfp4ScaleRule::Amax;
};

struct Checkpoint {
  std::filesystem::path dir;
  nlohmann::json config;  // config.json as stored
  QuantScheme scheme;
  WeightSet weights;
  std::map<std::string, KvCacheScales> kv_scales;  // by attention module (…layers.N.self_attn)
  uint64_t file_bytes = 0;                         // size of the .safetensors data on disk
};

// Bytes the weights take in memory: NVFP4 projections and everything else as stored.
struct WeightBytes {
  uint64_t nvfp4 = 0, other = 0;
  uint64_t total() const { return nvfp4 + other; }
};
WeightBytes weight_bytes(const Checkpoint& checkpoint);

// `dir` is a model folder, or a .gguf file.
Checkpoint load_checkpoint(const std::filesystem::path& dir, const LoadOptions& options = {});

}  // namespace fp4llm
