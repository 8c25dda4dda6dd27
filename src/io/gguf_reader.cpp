// GGUF checkpoints (llama.cpp) into the canonical weight set: projections are dequantized from
// their block format and requantized to NVFP4 (fp4llm keeps no other weight format), the
// embedding becomes BF16, norms F32. Tensor names and hyperparameters are translated to the
// Hugging Face names the rest of fp4llm uses; qwen3moe's fused expert tensors (ffn_*_exps) become
// the per-expert projections mlp.experts.N.*_proj.
#include <fmt/format.h>

#include <cstring>
#include <regex>

#include "formats/number_formats.hpp"
#include "formats/nvfp4_quantize.hpp"
#include "io/checkpoint_readers.hpp"
#include "io/gguf_dequant.hpp"
#include "io/gguf_file.hpp"
#include "util/error.hpp"
#include "util/progress_bar.hpp"

namespace fp4llm {

using nlohmann::json;

namespace {

const json& meta(const GgufFile& g, const std::string& key) {
  const auto it = g.metadata().find(key);
  if (it == g.metadata().end()) fail("{}: GGUF metadata '{}' is missing", g.path().string(), key);
  return *it;
}

json meta_or(const GgufFile& g, const std::string& key, json fallback) {
  const auto it = g.metadata().find(key);
  return it == g.metadata().end() ? fallback : *it;
}

// Hyperparameters as a transformers config.json would state them.
json hf_config(const GgufFile& g, const std::string& arch) {
  const std::string p = arch + ".";
  const json& head_dim = meta(g, p + "attention.key_length");
  const GgufTensor& embd = [&]() -> const GgufTensor& {
    const auto it = g.tensors().find("token_embd.weight");
    if (it == g.tensors().end()) fail("{}: token_embd.weight is missing", g.path().string());
    return it->second;
  }();
  json c = {{"hidden_size", meta(g, p + "embedding_length")},
            {"num_hidden_layers", meta(g, p + "block_count")},
            {"intermediate_size", arch == "qwen3moe" ? meta_or(g, p + "feed_forward_length", meta(g, p + "expert_feed_forward_length"))
                                                     : meta(g, p + "feed_forward_length")},
            {"num_attention_heads", meta(g, p + "attention.head_count")},
            {"num_key_value_heads", meta(g, p + "attention.head_count_kv")},
            {"head_dim", head_dim},
            {"vocab_size", embd.dims.size() == 2 ? embd.dims[1] : 0},
            {"max_position_embeddings", meta_or(g, p + "context_length", 4096)},
            {"rms_norm_eps", meta(g, p + "attention.layer_norm_rms_epsilon")},
            {"rope_theta", meta_or(g, p + "rope.freq_base", 10000.0)},
            {"tie_word_embeddings", g.tensors().count("output.weight") == 0}};
  if (arch == "gemma3") {
    c["architectures"] = {"Gemma3ForCausalLM"};
    c["sliding_window"] = meta(g, p + "attention.sliding_window");
    c["rope_local_base_freq"] = 10000.0;  // llama.cpp's fixed base for Gemma3's sliding layers
    c["query_pre_attn_scalar"] = head_dim;
    if (g.metadata().contains(p + "rope.scaling.factor"))
      c["rope_scaling"] = {{"rope_type", meta_or(g, p + "rope.scaling.type", "linear")},
                           {"factor", meta(g, p + "rope.scaling.factor")}};
    if (g.metadata().contains(p + "final_logit_softcapping"))
      c["final_logit_softcapping"] = meta(g, p + "final_logit_softcapping");
  } else if (arch == "qwen3moe") {
    // llama.cpp's qwen3moe: every layer is MoE and the top-k weights are always renormalised.
    c["architectures"] = {"Qwen3MoeForCausalLM"};
    c["num_experts"] = meta(g, p + "expert_count");
    c["num_experts_per_tok"] = meta(g, p + "expert_used_count");
    c["moe_intermediate_size"] = meta(g, p + "expert_feed_forward_length");
    c["norm_topk_prob"] = true;
    c["decoder_sparse_step"] = 1;
    c["mlp_only_layers"] = json::array();
  } else {
    c["architectures"] = {"Qwen3ForCausalLM"};
  }
  return c;
}

// llama.cpp tensor names → Hugging Face module names. Gemma's ffn_norm is the pre-feedforward
// norm; Qwen3's is the post-attention norm (the only norm before its MLP).
std::string hf_name(const std::string& name, const std::string& arch) {
  static const std::map<std::string, std::string> global = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"}};
  if (const auto it = global.find(name); it != global.end()) return it->second;
  static const std::regex layer(R"(blk\.(\d+)\.(\w+)\.weight)");
  std::smatch m;
  if (!std::regex_match(name, m, layer)) return "";
  const std::map<std::string, std::string> parts = {
      {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
      {"attn_norm", "input_layernorm"}, {"post_attention_norm", "post_attention_layernorm"},
      {"ffn_norm", arch == "gemma3" ? "pre_feedforward_layernorm" : "post_attention_layernorm"},
      {"post_ffw_norm", "post_feedforward_layernorm"}, {"ffn_gate", "mlp.gate_proj"},
      {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}, {"ffn_gate_inp", "mlp.gate"},
      {"ffn_gate_exps", "mlp.experts.gate_proj"}, {"ffn_up_exps", "mlp.experts.up_proj"},
      {"ffn_down_exps", "mlp.experts.down_proj"}};
  const auto it = parts.find(m[2].str());
  return it == parts.end() ? "" : fmt::format("model.layers.{}.{}.weight", m[1].str(), it->second);
}

Bytes float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return Bytes::owned(std::move(b));
}

// Rows [first, first + rows) of a GGUF matrix, dequantized into a BF16 or F32 tensor `name`.
TensorView dense_rows(const GgufTensor& t, const std::string& name, int64_t first, int64_t rows,
                      DType dtype, const std::filesystem::path& path) {
  const int64_t cols = t.dims[0];
  const size_t width = dtype == DType::F32 ? 4 : 2;
  std::vector<uint8_t> b(size_t(rows * cols) * width);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    gguf_dequantize_row(t, first + r, row.data());
    for (int64_t c = 0; c < cols; ++c) {
      uint8_t* dst = &b[size_t(r * cols + c) * width];
      if (dtype == DType::F32) {
        std::memcpy(dst, &row[size_t(c)], 4);
      } else {
        const uint16_t h = float_to_bf16(row[size_t(c)]);
        std::memcpy(dst, &h, 2);
      }
    }
  }
  return TensorView{name, dtype, {rows, cols}, Bytes::owned(std::move(b)), path};
}

// A projection (or one expert's rows of a fused expert tensor) requantized to NVFP4, or kept
// BF16 for the 16-bit reference of `fp4llm eval`.
void add_projection(const std::string& module, const GgufTensor& t, int64_t first, int64_t rows,
                    const LoadOptions& options, const std::filesystem::path& path, Checkpoint& out) {
  if (options.keep_16bit) {
    out.weights.tensors.emplace(module + ".weight", dense_rows(t, module + ".weight", first, rows, DType::BF16, path));
    return;
  }
  const int64_t cols = t.dims[0];
  Nvfp4Matrix m = quantize_nvfp4(rows, cols, [&](int64_t r, float* dst) { gguf_dequantize_row(t, first + r, dst); },
                                 options.scale_rule);
  out.weights.linears.emplace(module, QuantizedLinear{rows, cols, Bytes::owned(std::move(m.packed)),
                                                      Bytes::owned(std::move(m.block_scales)), m.global_scale,
                                                      std::nullopt});
}

}  // namespace

void read_gguf(const std::filesystem::path& path, const LoadOptions& options, Checkpoint& out) {
  const GgufFile g = GgufFile::open(path);
  const std::string arch = meta(g, "general.architecture").get<std::string>();
  if (arch != "gemma3" && arch != "qwen3" && arch != "qwen3moe")
    fail("{}: GGUF architecture '{}' is not supported (gemma3, qwen3, qwen3moe)", path.string(), arch);
  out.config = hf_config(g, arch);
  uint64_t total = 0;
  for (const auto& [_, t] : g.tensors()) total += t.data.size();
  out.file_bytes = total;
  ProgressBar bar("loading GGUF, requantizing to NVFP4", total);
  if (!options.progress) bar.disable();
  for (const auto& [name, t] : g.tensors()) {
    const std::string hf = hf_name(name, arch);
    if (hf.empty()) fail("{}: GGUF tensor '{}' has no place in a {} model", path.string(), name, arch);
    const int64_t cols = t.dims[0], rows = t.numel() / cols;
    const std::string module = hf.substr(0, hf.size() - 7);
    if (module.ends_with("_proj") && t.dims.size() == 3) {
      // ffn_{gate,up,down}_exps [in, out, experts]: expert e is rows [e*out, (e+1)*out).
      const size_t at = module.rfind('.');
      for (int64_t e = 0; e < t.dims[2]; ++e)
        add_projection(fmt::format("{}.{}{}", module.substr(0, at), e, module.substr(at)), t,
                       e * t.dims[1], t.dims[1], options, path, out);
    } else if (module.ends_with("_proj") && t.dims.size() == 2) {
      add_projection(module, t, 0, rows, options, path, out);
    } else if (t.dims.size() == 1) {
      std::vector<float> v(static_cast<size_t>(cols));
      gguf_dequantize_row(t, 0, v.data());
      // llama.cpp's converter stores Gemma's RMSNorm weights as 1 + w (it multiplies by w).
      if (arch == "gemma3")
        for (float& x : v) x -= 1.0f;
      out.weights.tensors.emplace(hf, TensorView{hf, DType::F32, {cols}, float_bytes(v), path});
    } else if (module.ends_with(".mlp.gate") && t.dims.size() == 2) {
      // The MoE router stays float32: rounding it could flip which experts a token goes to.
      out.weights.tensors.emplace(hf, dense_rows(t, hf, 0, rows, DType::F32, path));
    } else if (t.dims.size() == 2) {  // embedding, lm_head: BF16 as HF checkpoints ship them
      out.weights.tensors.emplace(hf, dense_rows(t, hf, 0, rows, DType::BF16, path));
    } else {
      fail("{}: GGUF tensor '{}' has {} dimensions", path.string(), name, t.dims.size());
    }
    bar.advance(t.data.size());
  }
}

}  // namespace fp4llm
