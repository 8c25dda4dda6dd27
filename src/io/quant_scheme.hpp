// Which NVFP4 flavour a model folder holds, decided from hf_quant_config.json and
// config.json's quantization_config.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace fp4llm {

enum class CheckpointFormat { ModelOptNvfp4, CompressedTensorsNvfp4, Plain, Gguf };
std::string_view format_name(CheckpointFormat f);

struct QuantScheme {
  CheckpointFormat format = CheckpointFormat::Plain;
  std::string quant_algo;                    // "NVFP4", "W4A16_NVFP4", or "" for plain
  std::string kv_cache_quant_algo;           // "FP8" or ""
  std::vector<std::string> exclude_modules;  // fnmatch patterns of modules kept in 16 bits
};

// Throws Error for quantization methods fp4llm does not run (FP8, AWQ, GPTQ, MXFP4, ...), naming
// the method and the file it was found in.
QuantScheme detect_quant_scheme(const std::filesystem::path& dir, const nlohmann::json& config);

// True when `module` matches one of the fnmatch patterns.
bool module_excluded(const std::string& module, const std::vector<std::string>& patterns);

}  // namespace fp4llm
