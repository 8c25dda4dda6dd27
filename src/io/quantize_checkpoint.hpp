// `fp4llm quantize`: a plain BF16/F16/F32 Hugging Face checkpoint in, a ModelOpt-format NVFP4
// checkpoint out (same tensor names, dtypes, shapes and config keys as nvidia/*-NVFP4 exports).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "formats/nvfp4_scale_search.hpp"
#include "io/checkpoint.hpp"

namespace fp4llm {

struct QuantizeOptions {
  std::vector<std::string> exclude;        // fnmatch patterns kept in 16 bits, beyond the defaults
  uint64_t max_shard_bytes = 5'000'000'000;
  bool progress = true;
  Nvfp4ScaleRule scale_rule = Nvfp4ScaleRule::Amax;  // Mse: `--scale-search mse`
  // FP8 KV-cache scales per layer, written as ModelOpt's <attn>.k_proj.k_scale / v_proj.v_scale
  // (kv_cache_quant_algo "FP8") for the layers named kv_scale_layers_prefix + N (the text model's:
  // a multimodal checkpoint's vision layers get none); empty: none written, engines use 1.0.
  std::vector<KvCacheScales> kv_scales;
  std::string kv_scale_layers_prefix = "model.layers.";
};

struct QuantizeReport {
  int quantized_linears = 0;
  int copied_tensors = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  std::vector<std::filesystem::path> files;
};

QuantizeReport quantize_checkpoint(const std::filesystem::path& src, const std::filesystem::path& dst,
                                   const QuantizeOptions& options);

}  // namespace fp4llm
