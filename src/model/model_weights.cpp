#include "model/model_weights.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "io/linear_selection.hpp"
#include "io/tensor_store.hpp"
#include "util/error.hpp"

namespace fp4llm {

const QuantizedLinear& LinearWeight::nvfp4_for(const char* user, int64_t layer, const char* role) const {
  if (!nvfp4) fail("{} runs NVFP4 projections only; layer {} {} is 16-bit", user, layer, role);
  return *nvfp4;
}

namespace {

// Where the text model's tensors live: plain causal LMs use "model.", Gemma3's multimodal
// checkpoints "language_model.model." (or "model.language_model." when re-saved by transformers 5).
std::string find_prefix(const WeightSet& w) {
  for (const char* p : {"model.", "language_model.model.", "model.language_model."})
    if (w.tensors.count(std::string(p) + "embed_tokens.weight")) return p;
  fail("checkpoint has no embed_tokens.weight under model., language_model.model. or "
       "model.language_model.");
}

class Binder {
 public:
  Binder(const Checkpoint& ck, std::string prefix, bool allow_dense)
      : ck_(ck), prefix_(std::move(prefix)), allow_dense_(allow_dense) {}

  LinearWeight linear(const std::string& module, int64_t out, int64_t in) const {
    const std::string name = prefix_ + module;
    const auto it = ck_.weights.linears.find(name);
    if (it == ck_.weights.linears.end()) {
      if (ck_.weights.tensors.count(name + ".weight")) {
        if (allow_dense_) return {nullptr, &tensor(name + ".weight", {out, in}), out, in};
        fail("{}.weight is not NVFP4 (kept 16-bit); fp4llm runs every projection in NVFP4 and "
             "has no 16-bit fallback",
             name);
      }
      fail("tensor {}.weight is missing from the checkpoint", name);
    }
    const QuantizedLinear& q = it->second;
    if (q.out_features != out || q.in_features != in)
      fail("{}: shape [{}, {}], the config needs [{}, {}]", name, q.out_features, q.in_features,
           out, in);
    return {&q, nullptr, out, in};
  }

  const TensorView& tensor(const std::string& full_name, const std::vector<int64_t>& shape) const {
    const auto it = ck_.weights.tensors.find(full_name);
    if (it == ck_.weights.tensors.end()) fail("tensor {} is missing from the checkpoint", full_name);
    if (it->second.shape != shape)
      fail("{}: the config needs shape [{}]", it->second.describe(), fmt::join(shape, ", "));
    return it->second;
  }

  std::vector<float> vector(const std::string& module, int64_t n) const {
    return read_floats(tensor(prefix_ + module, {n}));
  }

  const std::string& prefix() const { return prefix_; }

 private:
  const Checkpoint& ck_;
  std::string prefix_;
  bool allow_dense_;
};

MlpWeights bind_mlp(const Binder& b, const std::string& p, int64_t hidden, int64_t inter) {
  return {b.linear(p + "gate_proj", inter, hidden), b.linear(p + "up_proj", inter, hidden),
          b.linear(p + "down_proj", hidden, inter)};
}

LayerWeights bind_layer(const Checkpoint& ck, const Binder& b, const ModelConfig& c, int64_t i) {
  const std::string p = fmt::format("layers.{}.", i);
  const int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  LayerWeights l;
  l.q = b.linear(p + "self_attn.q_proj", q, h);
  l.k = b.linear(p + "self_attn.k_proj", kv, h);
  l.v = b.linear(p + "self_attn.v_proj", kv, h);
  l.o = b.linear(p + "self_attn.o_proj", h, q);
  l.q_norm = b.vector(p + "self_attn.q_norm.weight", c.head_dim);
  l.k_norm = b.vector(p + "self_attn.k_norm.weight", c.head_dim);
  l.input_norm = b.vector(p + "input_layernorm.weight", h);
  l.post_attention_norm = b.vector(p + "post_attention_layernorm.weight", h);
  if (c.family == ModelFamily::Gemma3) {
    l.pre_feedforward_norm = b.vector(p + "pre_feedforward_layernorm.weight", h);
    l.post_feedforward_norm = b.vector(p + "post_feedforward_layernorm.weight", h);
  }
  if (c.layer_moe[size_t(i)]) {
    MoeWeights moe;
    moe.router = read_floats(b.tensor(b.prefix() + p + "mlp.gate.weight", {c.num_experts, h}));
    for (int64_t e = 0; e < c.num_experts; ++e)
      moe.experts.push_back(bind_mlp(b, fmt::format("{}mlp.experts.{}.", p, e), h, c.moe_intermediate_size));
    l.moe = std::move(moe);
  } else {
    l.mlp = bind_mlp(b, p + "mlp.", h, c.intermediate_size);
  }
  if (const auto it = ck.kv_scales.find(b.prefix() + p + "self_attn"); it != ck.kv_scales.end())
    l.kv_scales = it->second;
  return l;
}

}  // namespace

ModelWeights ModelWeights::bind(const Checkpoint& ck, bool allow_dense) {
  ModelWeights w;
  w.config = ModelConfig::from_json(ck.config);
  const ModelConfig& c = w.config;
  const Binder b(ck, find_prefix(ck.weights), allow_dense);
  w.tensor_prefix = b.prefix();
  w.embed = &b.tensor(b.prefix() + "embed_tokens.weight", {c.vocab_size, c.hidden_size});
  w.final_norm = b.vector("norm.weight", c.hidden_size);
  // lm_head sits beside "model." (or beside "language_model.model."), not under it.
  const std::string head = b.prefix().substr(0, b.prefix().size() - 6) + "lm_head";
  if (const auto it = ck.weights.linears.find(head); it != ck.weights.linears.end()) {
    w.lm_head_nvfp4 = &it->second;
    if (it->second.out_features != c.vocab_size || it->second.in_features != c.hidden_size)
      fail("{}: shape [{}, {}], the config needs [{}, {}]", head, it->second.out_features,
           it->second.in_features, c.vocab_size, c.hidden_size);
  } else if (ck.weights.tensors.count(head + ".weight")) {
    w.lm_head = &b.tensor(head + ".weight", {c.vocab_size, c.hidden_size});
  } else if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    fail("tensor {}.weight is missing and tie_word_embeddings is false", head);
  }
  for (int64_t i = 0; i < c.num_layers; ++i) w.layers.push_back(bind_layer(ck, b, c, i));
  return w;
}

void ModelWeights::quantize_lm_head() {
  if (lm_head_nvfp4) return;
  if (!lm_head) fail("quantize_lm_head: the model has no lm_head");
  // bind() checked the shape; quantize_linear names the tensor if it cannot be NVFP4.
  quantized_lm_head = std::make_shared<const QuantizedLinear>(quantize_linear(*lm_head));
  lm_head_nvfp4 = quantized_lm_head.get();
}

void ModelWeights::check_embedding_offload() const {
  if (lm_head == embed && !lm_head_nvfp4) fail("{}", kTiedHeadOffloadError);
}

WeightBytes bound_weight_bytes(const ModelWeights& w, const Checkpoint& ck, bool offload_embeddings) {
  WeightBytes b = weight_bytes(ck);
  if (w.quantized_lm_head) {
    b.nvfp4 += w.quantized_lm_head->bytes();
    if (w.lm_head && w.lm_head != w.embed) b.other -= w.lm_head->data.size();
  }
  if (offload_embeddings && w.embed) b.other -= std::min<uint64_t>(b.other, w.embed->data.size());
  return b;
}

}  // namespace fp4llm
