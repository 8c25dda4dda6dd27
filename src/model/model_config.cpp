#include "model/model_config.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace fp4llm {

using nlohmann::json;

namespace {

int64_t get_int(const json& j, const char* key, const char* arch) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() <= 0)
    fail("config.json ({}): '{}' is missing or not a positive integer", arch, key);
  return it->get<int64_t>();
}

int64_t get_int_or(const json& j, const char* key, int64_t fallback, const char* arch) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return get_int(j, key, arch);
}

// Gemma3TextConfig's defaults (transformers): multimodal configs often leave them out.
json with_gemma3_defaults(json t) {
  const json defaults = {{"vocab_size", 262208}, {"hidden_size", 2304},
                         {"intermediate_size", 9216}, {"num_hidden_layers", 26},
                         {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                         {"head_dim", 256}, {"sliding_window", 4096},
                         {"max_position_embeddings", 131072}};
  for (const auto& [k, v] : defaults.items())
    if (!t.contains(k) || t[k].is_null()) t[k] = v;
  return t;
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& config) {
  ModelConfig c;
  if (!config.is_object()) fail("config.json: not a JSON object");
  const auto archs = config.find("architectures");
  if (archs == config.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string())
    fail("config.json: 'architectures' is missing");
  c.architecture = (*archs)[0].get<std::string>();
  json t = config;
  if (c.architecture == "Qwen3ForCausalLM") {
    c.family = ModelFamily::Qwen3;
  } else if (c.architecture == "Qwen3MoeForCausalLM") {
    c.family = ModelFamily::Qwen3Moe;
  } else if (c.architecture == "Gemma3ForCausalLM") {
    c.family = ModelFamily::Gemma3;
    t = with_gemma3_defaults(config);
  } else if (c.architecture == "Gemma3ForConditionalGeneration") {
    c.family = ModelFamily::Gemma3;
    const auto text = config.find("text_config");
    if (text != config.end() && !text->is_object()) fail("config.json: text_config is not an object");
    t = with_gemma3_defaults(text != config.end() ? *text : json::object());
  } else {
    fail("config.json: architecture '{}' is not supported; fp4llm runs Qwen3ForCausalLM, "
         "Qwen3MoeForCausalLM, Gemma3ForCausalLM and Gemma3ForConditionalGeneration (text)",
         c.architecture);
  }
  const char* a = c.architecture.c_str();
  c.hidden_size = get_int(t, "hidden_size", a);
  c.num_layers = get_int(t, "num_hidden_layers", a);
  c.num_heads = get_int(t, "num_attention_heads", a);
  c.num_kv_heads = get_int_or(t, "num_key_value_heads", c.num_heads, a);
  c.head_dim = get_int_or(t, "head_dim", c.hidden_size / c.num_heads, a);
  c.intermediate_size = get_int(t, "intermediate_size", a);
  c.vocab_size = get_int(t, "vocab_size", a);
  c.max_position_embeddings = get_int_or(t, "max_position_embeddings", 0, a);
  const auto tie = t.find("tie_word_embeddings");
  c.tie_word_embeddings = tie != t.end() && tie->is_boolean() ? tie->get<bool>()
                                                               : c.family == ModelFamily::Gemma3;
  if (c.family == ModelFamily::Qwen3Moe) {
    c.num_experts = get_int(t, "num_experts", a);
    c.experts_per_token = get_int(t, "num_experts_per_tok", a);
    c.moe_intermediate_size = get_int(t, "moe_intermediate_size", a);
  }
  c.layer_sliding.assign(size_t(c.num_layers), false);
  if (c.family == ModelFamily::Gemma3) {
    c.sliding_window = get_int(t, "sliding_window", a);
    const auto types = t.find("layer_types");
    if (types != t.end() && types->is_array()) {
      if (int64_t(types->size()) != c.num_layers)
        fail("config.json: layer_types has {} entries for {} layers", types->size(), c.num_layers);
      for (size_t i = 0; i < types->size(); ++i)
        c.layer_sliding[i] = (*types)[i] == "sliding_attention";
    } else {
      // Five sliding layers, then one full-attention layer (transformers' default pattern).
      for (int64_t i = 0; i < c.num_layers; ++i) c.layer_sliding[size_t(i)] = (i + 1) % 6 != 0;
    }
  }
  return c;
}

int64_t ModelConfig::num_sliding_layers() const {
  return std::count(layer_sliding.begin(), layer_sliding.end(), true);
}

int64_t ModelConfig::kv_cache_bytes(int64_t tokens) const {
  const int64_t sliding_tokens = std::min(tokens, sliding_window);
  return kv_bytes_per_token_per_layer() *
         ((num_layers - num_sliding_layers()) * tokens + num_sliding_layers() * sliding_tokens);
}

}  // namespace fp4llm
