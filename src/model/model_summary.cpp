#include "model/model_summary.hpp"

#include "formats/number_formats.hpp"
#include "io/checkpoint.hpp"
#include "io/linear_selection.hpp"
#include "io/tensor_store.hpp"
#include "util/error.hpp"
#include "util/json_file.hpp"

namespace fp4llm {

namespace fs = std::filesystem;

namespace {

uint64_t nvfp4_bytes(int64_t out, int64_t in) {
  return uint64_t(out * in / 2 + out * (in / kNvfp4BlockSize)) + sizeof(float);
}

void count_plain(const fs::path& dir, ModelSummary& s) {
  const TensorStore store = TensorStore::open(dir);
  s.file_bytes = store.total_bytes();
  for (const auto& [name, t] : store.tensors()) {
    if (quantizable_linear_module(t, default_exclude_modules())) {
      ++s.num_linears;
      s.linear_params += t.numel();
      s.linear_bytes += nvfp4_bytes(t.shape[0], t.shape[1]);
    } else {
      ++s.num_other_tensors;
      s.other_params += t.numel();
      s.other_bytes += t.data.size();
    }
  }
}

void count_quantized(const fs::path& dir, ModelSummary& s) {
  const Checkpoint ck = load_checkpoint(dir, LoadOptions{{}, false});
  s.config = ModelConfig::from_json(ck.config);
  s.file_bytes = ck.file_bytes;
  for (const auto& [_, q] : ck.weights.linears) {
    ++s.num_linears;
    s.linear_params += q.out_features * q.in_features;
    s.linear_bytes += q.bytes();
  }
  for (const auto& [_, t] : ck.weights.tensors) {
    ++s.num_other_tensors;
    s.other_params += t.numel();
    s.other_bytes += t.data.size();
  }
  s.kv_scale_layers = int64_t(ck.kv_scales.size());
}

}  // namespace

ModelSummary summarize_model(const fs::path& dir) {
  if (fs::is_regular_file(dir) && dir.extension() == ".gguf") {
    ModelSummary s;
    s.scheme.format = CheckpointFormat::Gguf;
    count_quantized(dir, s);
    return s;
  }
  if (!fs::is_directory(dir)) fail("{} is not a model folder", dir.string());
  if (!fs::exists(dir / "config.json")) fail("{}: config.json is missing", dir.string());
  const nlohmann::json config = read_json_file(dir / "config.json");
  ModelSummary s;
  s.config = ModelConfig::from_json(config);
  s.scheme = detect_quant_scheme(dir, config);
  if (s.scheme.format == CheckpointFormat::Plain)
    count_plain(dir, s);
  else
    count_quantized(dir, s);
  return s;
}

nlohmann::json ModelSummary::to_json() const {
  const ModelConfig& c = config;
  return {{"architecture", c.architecture},
          {"layers", c.num_layers},
          {"sliding_window_layers", c.num_sliding_layers()},
          {"hidden_size", c.hidden_size},
          {"attention_heads", c.num_heads},
          {"kv_heads", c.num_kv_heads},
          {"head_dim", c.head_dim},
          {"vocab_size", c.vocab_size},
          {"experts", c.num_experts},
          {"format", format_name(scheme.format)},
          {"quant_algo", scheme.quant_algo},
          {"parameters", linear_params + other_params},
          {"nvfp4_parameters", linear_params},
          {"other_parameters", other_params},
          {"nvfp4_linears", num_linears},
          {"other_tensors", num_other_tensors},
          {"file_bytes", file_bytes},
          {"gpu_weight_bytes", linear_bytes + other_bytes},
          {"nvfp4_weight_bytes", linear_bytes},
          {"other_weight_bytes", other_bytes},
          {"kv_cache_dtype", "fp8_e4m3"},
          {"kv_bytes_per_token", c.kv_bytes_per_token_per_layer() * c.num_layers},
          {"kv_bytes_per_token_full_layers",
           c.kv_bytes_per_token_per_layer() * (c.num_layers - c.num_sliding_layers())},
          {"sliding_window", c.sliding_window},
          {"checkpoint_kv_scales", kv_scale_layers}};
}

}  // namespace fp4llm
