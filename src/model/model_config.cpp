#include "model/model_config.hpp"

#include <algorithm>
#include <cmath>

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

double get_double_or(const json& j, const char* key, double fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail("config.json: '{}' is not a number", key);
  return it->get<double>();
}

// RoPE parameters come in two spellings: transformers 4.x keys (rope_theta, rope_scaling,
// rope_local_base_freq) and 5.x's rope_parameters, either one dict or one per layer type.
void parse_rope(const json& t, ModelConfig& c) {
  const auto linear_factor = [](const json& scaling) {
    if (!scaling.is_object()) return 1.0;
    std::string type = "default";
    for (const char* key : {"type", "rope_type"})
      if (const auto it = scaling.find(key); it != scaling.end() && it->is_string()) type = *it;
    if (type == "default") return 1.0;
    if (type != "linear") fail("config.json: rope scaling type '{}' is not supported", type);
    return get_double_or(scaling, "factor", 1.0);
  };
  c.rope_theta = get_double_or(t, "rope_theta", c.family == ModelFamily::Gemma3 ? 1e6 : 1e4);
  c.rope_local_theta = get_double_or(t, "rope_local_base_freq", 1e4);
  if (const auto s = t.find("rope_scaling"); s != t.end()) c.rope_scaling_factor = linear_factor(*s);
  const auto p = t.find("rope_parameters");
  if (p == t.end() || !p->is_object()) return;
  if (p->contains("full_attention") || p->contains("sliding_attention")) {
    if (const auto f = p->find("full_attention"); f != p->end() && f->is_object()) {
      c.rope_theta = get_double_or(*f, "rope_theta", c.rope_theta);
      c.rope_scaling_factor = linear_factor(*f);
    }
    if (const auto s = p->find("sliding_attention"); s != p->end() && s->is_object()) {
      c.rope_local_theta = get_double_or(*s, "rope_theta", c.rope_local_theta);
      if (linear_factor(*s) != 1.0) fail("config.json: sliding layers with scaled RoPE are not supported");
    }
  } else {
    c.rope_theta = get_double_or(*p, "rope_theta", c.rope_theta);
    c.rope_scaling_factor = linear_factor(*p);
  }
}

void parse_moe_layers(const json& t, ModelConfig& c) {
  c.layer_moe.assign(size_t(c.num_layers), false);
  if (c.family != ModelFamily::Qwen3Moe) return;
  const int64_t step = get_int_or(t, "decoder_sparse_step", 1, c.architecture.c_str());
  std::vector<int64_t> mlp_only;
  if (const auto m = t.find("mlp_only_layers"); m != t.end() && m->is_array())
    for (const auto& v : *m)
      if (v.is_number_integer()) mlp_only.push_back(v.get<int64_t>());
  for (int64_t i = 0; i < c.num_layers; ++i)
    c.layer_moe[size_t(i)] = std::find(mlp_only.begin(), mlp_only.end(), i) == mlp_only.end() &&
                             (i + 1) % step == 0;
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
    // transformers 5 writes num_local_experts where 4.x (and published checkpoints) say num_experts.
    c.num_experts = t.contains("num_experts") ? get_int(t, "num_experts", a)
                                              : get_int(t, "num_local_experts", a);
    c.experts_per_token = get_int(t, "num_experts_per_tok", a);
    c.moe_intermediate_size = get_int(t, "moe_intermediate_size", a);
  }
  c.rms_norm_eps = get_double_or(t, "rms_norm_eps", 1e-6);
  parse_rope(t, c);
  parse_moe_layers(t, c);
  c.attention_scale = 1.0 / std::sqrt(double(c.head_dim));
  if (c.family == ModelFamily::Gemma3)
    c.attention_scale = 1.0 / std::sqrt(get_double_or(t, "query_pre_attn_scalar", double(c.head_dim)));
  c.final_logit_softcapping = get_double_or(t, "final_logit_softcapping", 0.0);
  if (get_double_or(t, "attn_logit_softcapping", 0.0) != 0.0)
    fail("config.json: attn_logit_softcapping is not supported (Gemma3 does not use it)");
  if (const auto n = t.find("norm_topk_prob"); n != t.end() && n->is_boolean()) c.norm_topk_prob = n->get<bool>();
  if (const auto h = t.find("hidden_activation"); h != t.end() && h->is_string() &&
      *h != "gelu_pytorch_tanh")
    fail("config.json: hidden_activation '{}' is not supported (Gemma3 uses gelu_pytorch_tanh)",
         h->get<std::string>());
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

bool ModelConfig::has_dense_mlp() const {
  return std::find(layer_moe.begin(), layer_moe.end(), false) != layer_moe.end();
}

int64_t ModelConfig::kv_cache_bytes(int64_t tokens) const {
  const int64_t sliding_tokens = std::min(tokens, sliding_window);
  return kv_bytes_per_token_per_layer() *
         ((num_layers - num_sliding_layers()) * tokens + num_sliding_layers() * sliding_tokens);
}

}  // namespace fp4llm
