#include "io/quant_scheme.hpp"

#include <fnmatch.h>

#include "formats/number_formats.hpp"
#include "util/error.hpp"
#include "util/json_file.hpp"

namespace fp4llm {

namespace fs = std::filesystem;
using nlohmann::json;

std::string_view format_name(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::ModelOptNvfp4: return "ModelOpt NVFP4";
    case CheckpointFormat::CompressedTensorsNvfp4: return "compressed-tensors NVFP4";
    case CheckpointFormat::Plain: return "plain (quantized to NVFP4 at load)";
    case CheckpointFormat::Gguf: return "GGUF (requantized to NVFP4 at load)";
  }
  return "?";
}

bool module_excluded(const std::string& module, const std::vector<std::string>& patterns) {
  for (const auto& p : patterns)
    if (fnmatch(p.c_str(), module.c_str(), 0) == 0) return true;
  return false;
}

namespace {

std::string string_or_empty(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> string_list(const json& j, const char* key, const std::string& where) {
  std::vector<std::string> out;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) fail("{}: '{}' must be a list of strings", where, key);
  for (const auto& v : *it) {
    if (!v.is_string()) fail("{}: '{}' must be a list of strings", where, key);
    out.push_back(v.get<std::string>());
  }
  return out;
}

void check_group_size(const json& j, const std::string& where) {
  const auto it = j.find("group_size");
  if (it != j.end() && !(it->is_number_integer() && it->get<int>() == kNvfp4BlockSize))
    fail("{}: group_size {} is not NVFP4's {}", where, it->dump(), kNvfp4BlockSize);
}

// ModelOpt: {"quant_algo", "kv_cache_quant_algo", "group_size", "exclude_modules"}, found under
// "quantization" in hf_quant_config.json or directly in config.json's quantization_config.
QuantScheme modelopt_scheme(const json& q, const std::string& where) {
  QuantScheme s;
  s.format = CheckpointFormat::ModelOptNvfp4;
  s.quant_algo = string_or_empty(q, "quant_algo");
  if (s.quant_algo != "NVFP4" && s.quant_algo != "W4A16_NVFP4")
    fail("{}: ModelOpt quant_algo '{}' is not supported; fp4llm runs NVFP4 checkpoints",
         where, s.quant_algo);
  check_group_size(q, where);
  s.kv_cache_quant_algo = string_or_empty(q, "kv_cache_quant_algo");
  s.exclude_modules = string_list(q, "exclude_modules", where);
  if (s.exclude_modules.empty()) s.exclude_modules = string_list(q, "ignore", where);
  return s;
}

// compressed-tensors: {"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized",
// "config_groups": {...}, "ignore": [...]}. A group may carry its own format.
QuantScheme compressed_tensors_scheme(const json& q, const std::string& where) {
  std::string format = string_or_empty(q, "format");
  if (const auto groups = q.find("config_groups"); groups != q.end() && groups->is_object()) {
    for (const auto& [name, g] : groups->items()) {
      const std::string gf = g.is_object() ? string_or_empty(g, "format") : "";
      if (!gf.empty() && gf != "nvfp4-pack-quantized")
        fail("{}: config group '{}' has format '{}'; fp4llm reads nvfp4-pack-quantized", where,
             name, gf);
      if (g.is_object() && g.contains("weights") && g["weights"].is_object())
        check_group_size(g["weights"], where);
      if (format.empty()) format = gf;
    }
  }
  if (format != "nvfp4-pack-quantized")
    fail("{}: compressed-tensors format '{}' is not supported; fp4llm reads "
         "nvfp4-pack-quantized",
         where, format);
  QuantScheme s;
  s.format = CheckpointFormat::CompressedTensorsNvfp4;
  s.quant_algo = "NVFP4";
  s.exclude_modules = string_list(q, "ignore", where);
  if (q.contains("kv_cache_scheme") && q["kv_cache_scheme"].is_object()) s.kv_cache_quant_algo = "FP8";
  return s;
}

}  // namespace

QuantScheme detect_quant_scheme(const fs::path& dir, const json& config) {
  const fs::path hf_quant = dir / "hf_quant_config.json";
  if (fs::exists(hf_quant)) {
    const json j = read_json_file(hf_quant);
    if (!j.contains("quantization") || !j["quantization"].is_object())
      fail("{}: missing the 'quantization' object", hf_quant.string());
    return modelopt_scheme(j["quantization"], hf_quant.string());
  }
  const auto qc = config.find("quantization_config");
  if (qc == config.end() || qc->is_null()) return QuantScheme{};
  const std::string where = (dir / "config.json").string() + " quantization_config";
  if (!qc->is_object()) fail("{}: not an object", where);
  // Newer ModelOpt exports look like compressed-tensors (config_groups) but use ModelOpt's tensor
  // names: quant_method decides (FORMATS.md).
  const std::string method = string_or_empty(*qc, "quant_method");
  if (method == "modelopt") return modelopt_scheme(*qc, where);
  if (method == "compressed-tensors") return compressed_tensors_scheme(*qc, where);
  fail("{}: quant_method '{}' is not supported; fp4llm reads NVFP4 checkpoints (ModelOpt or "
       "compressed-tensors) and plain BF16/F16/F32 ones",
       where, method);
}

}  // namespace fp4llm
