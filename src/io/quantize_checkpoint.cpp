#include "io/quantize_checkpoint.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <tuple>

#include "formats/number_formats.hpp"
#include "io/fused_experts.hpp"
#include "io/linear_selection.hpp"
#include "io/quant_scheme.hpp"
#include "io/safetensors_writer.hpp"
#include "io/tensor_store.hpp"
#include "util/error.hpp"
#include "util/json_file.hpp"
#include "util/progress_bar.hpp"
#include "util/strings.hpp"

namespace fp4llm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kVersion = "0.1.0";

Bytes float_scalar_bytes(float v) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return Bytes::owned(std::move(b));
}

// fp4llm quantizes weights only (activations stay 16-bit in its kernels), so it says so with
// ModelOpt's weight-only algorithm name; kv_cache_quant_algo is FP8 only when KV scales were
// calibrated and written.
json quantization_section(const std::vector<std::string>& exclude, bool kv_scales) {
  return {{"quant_algo", "W4A16_NVFP4"},
          {"kv_cache_quant_algo", kv_scales ? json("FP8") : json(nullptr)},
          {"group_size", kNvfp4BlockSize},
          {"exclude_modules", exclude}};
}

void write_configs(const fs::path& src, const fs::path& dst, json config,
                   const std::vector<std::string>& exclude, bool kv_scales) {
  json qc = quantization_section(exclude, kv_scales);
  qc["quant_method"] = "modelopt";
  qc["producer"] = {{"name", "fp4llm"}, {"version", kVersion}};
  config["quantization_config"] = qc;
  write_json_file(dst / "config.json", config);
  write_json_file(dst / "hf_quant_config.json",
                  {{"producer", {{"name", "fp4llm"}, {"version", kVersion}}},
                   {"quantization", quantization_section(exclude, kv_scales)}});
  // Tokenizer, generation config, chat template, licence: every other plain file travels along.
  for (const auto& e : fs::directory_iterator(src)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || e.path().extension() == ".safetensors" ||
        name == "model.safetensors.index.json" || name == "config.json" ||
        name == "hf_quant_config.json")
      continue;
    fs::copy_file(e.path(), dst / name, fs::copy_options::overwrite_existing);
  }
}

void check_destination(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  if (fs::exists(dst) && fs::equivalent(src, dst, ec))
    fail("destination {} is the source folder", dst.string());
  if (fs::exists(dst) && !fs::is_directory(dst)) fail("destination {} is not a folder", dst.string());
  if (fs::exists(dst) && !fs::is_empty(dst))
    fail("destination {} is not empty; refusing to overwrite", dst.string());
  fs::create_directories(dst);
}

// The decoder layer N of a "<layers_prefix>N.self_attn.<proj>.weight" tensor, or -1.
int64_t attention_layer(const std::string& name, const std::string& layers_prefix, std::string_view proj) {
  std::string stem;
  if (!strip_suffix(name, fmt::format(".self_attn.{}.weight", proj), stem) || !stem.starts_with(layers_prefix)) return -1;
  const std::string number = stem.substr(layers_prefix.size());
  if (number.empty() || number.size() > 9 || !std::all_of(number.begin(), number.end(), ::isdigit)) return -1;
  return std::stoll(number);
}

// ModelOpt stores a layer's KV scales next to its k_proj / v_proj, as F32 scalars.
void write_kv_scale(const TensorView& t, const QuantizeOptions& options, ShardedWriter& writer, int& written) {
  for (const auto& [proj, key, is_k] : {std::tuple{"k_proj", "k_scale", true}, {"v_proj", "v_scale", false}}) {
    const int64_t layer = attention_layer(t.name, options.kv_scale_layers_prefix, proj);
    if (layer < 0) continue;
    if (layer >= int64_t(options.kv_scales.size()))
      fail("{}: layer {} has no calibrated KV scale ({} layers calibrated)", t.name, layer, options.kv_scales.size());
    const KvCacheScales& s = options.kv_scales[size_t(layer)];
    std::string module;
    strip_suffix(t.name, ".weight", module);
    writer.add({module + "." + key, DType::F32, {}, float_scalar_bytes(is_k ? s.k : s.v)});
    ++written;
  }
}

// A projection becomes ModelOpt's three NVFP4 tensors; anything else is copied as stored.
void write_tensor(const TensorView& t, const QuantizeOptions& options, const std::vector<std::string>& exclude,
                  ShardedWriter& writer, QuantizeReport& report) {
  if (auto module = quantizable_linear_module(t, exclude)) {
    QuantizedLinear q = quantize_linear(t, options.scale_rule);
    writer.add({*module + ".weight", DType::U8, {q.out_features, q.in_features / 2}, q.packed});
    writer.add({*module + ".weight_scale", DType::F8_E4M3,
                {q.out_features, q.in_features / kNvfp4BlockSize}, q.block_scales});
    writer.add({*module + ".weight_scale_2", DType::F32, {}, float_scalar_bytes(q.global_scale)});
    report.bytes_out += q.bytes();
    ++report.quantized_linears;
  } else {
    writer.add({t.name, t.dtype, t.shape, t.data});
    report.bytes_out += t.data.size();
    ++report.copied_tensors;
  }
}

}  // namespace

QuantizeReport quantize_checkpoint(const fs::path& src, const fs::path& dst,
                                   const QuantizeOptions& options) {
  if (!fs::exists(src / "config.json")) fail("{}: config.json is missing", src.string());
  const json config = read_json_file(src / "config.json");
  const QuantScheme scheme = detect_quant_scheme(src, config);
  if (scheme.format != CheckpointFormat::Plain)
    fail("{} is already quantized ({}); quantize takes a BF16/F16/F32 checkpoint", src.string(),
         format_name(scheme.format));
  const TensorStore store = TensorStore::open(src);
  check_destination(src, dst);

  std::vector<std::string> exclude = default_exclude_modules();
  exclude.insert(exclude.end(), options.exclude.begin(), options.exclude.end());

  QuantizeReport report;
  report.bytes_in = store.total_bytes();
  ShardedWriter writer(dst, options.max_shard_bytes);
  ProgressBar bar("quantize", report.bytes_in);
  if (!options.progress) bar.disable();
  int kv_scales_written = 0;
  for (const auto& [_, stored] : store.tensors()) {
    for (const TensorView& t : unfuse_experts(stored)) {
      write_tensor(t, options, exclude, writer, report);
      if (!options.kv_scales.empty()) write_kv_scale(t, options, writer, kv_scales_written);
    }
    bar.advance(stored.data.size());
  }
  bar.finish();
  if (size_t(kv_scales_written) != 2 * options.kv_scales.size())
    fail("{}: wrote {} KV scales for {} calibrated layers; the k_proj/v_proj names do not match the layers",
         src.string(), kv_scales_written, options.kv_scales.size());
  report.files = writer.finish();
  write_configs(src, dst, config, exclude, !options.kv_scales.empty());
  return report;
}

}  // namespace fp4llm
