#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "backend/backend_factory.hpp"
#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/kv_calibration.hpp"
#include "cli/backend_flags.hpp"
#include "cli/commands.hpp"
#include "engine/evaluation.hpp"
#include "io/checkpoint.hpp"
#include "model/model_weights.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/text_file.hpp"

namespace fp4llm::cli {

namespace {

struct EvalArgs {
  std::string model, text_file, tokenizer, reference = "bf16", kv_cache_dtype = "fp8", scale_search = "amax";
  std::string kv_scales = "checkpoint", prefill_products = "bf16", device = "cpu";
  int64_t context = 512, max_tokens = 0;
  bool json = false, quantize_lm_head = false;
};

// Per-layer FP8 scales from the text's first window; prints how far the kv heads of a layer are
// apart, the case for per-head scales.
void calibrate_kv_scales(ModelWeights& w, const std::vector<int32_t>& tokens, int64_t context, bool verbose) {
  const cpu::KvCalibration c = cpu::calibrate_kv_scales(w, tokens, context);
  for (size_t l = 0; l < w.layers.size(); ++l) w.layers[l].kv_scales = c.scales[l];
  if (verbose)
    fmt::print("KV scales calibrated on {} tokens: amax / 448 per layer; largest ratio between the amax of two kv "
               "heads of one layer {:.2f}\n", c.tokens, c.widest_head_ratio);
}

// The scored model: the CPU backend with the chosen product arithmetic, or the GPU's.
std::unique_ptr<Backend> make_model(const EvalArgs& a, const ModelWeights& weights, const KvCacheConfig& kv) {
  if (a.device == "cuda") return make_backend(weights, BackendOptions{"cuda", kv, !a.json});
  auto model = std::make_unique<cpu::CpuBackend>(weights, kv);
  if (a.prefill_products == "fp8") model->set_fp8_prefill(true);
  if (a.prefill_products == "float32") model->set_bf16_products(false);
  return model;
}

// What the reference's line of the report is called.
const char* reference_label(const std::string& reference) {
  if (reference == "nvfp4") return "same model, BF16 products";
  if (reference == "cpu") return "same model on the CPU backend";
  return "16-bit reference + bf16 KV";
}

void run_eval(const EvalArgs& a) {
  namespace fs = std::filesystem;
  if (!fs::exists(a.model)) fail("model path {} does not exist", a.model);
  if (a.device != "cpu" && a.device != "cuda") fail("--device must be cpu or cuda, got '{}'", a.device);
  if (a.device == "cuda" && a.prefill_products != "bf16")
    fail("--prefill-products {} is the CPU backend's arithmetic; on the GPU products take BF16 activations "
         "(FP4LLM_FP8_PREFILL=1 selects its FP8 prefill GEMM)", a.prefill_products);
  if (a.device == "cuda" && a.reference == "nvfp4")
    fail("--reference nvfp4 compares product arithmetics of the CPU backend; with --device cuda use cpu, bf16 or none");
  const fs::path tok_dir = !a.tokenizer.empty() ? fs::path(a.tokenizer) : fs::path(a.model);
  const Tokenizer tokenizer = Tokenizer::load(tok_dir);
  std::vector<int32_t> tokens = tokenizer.encode(read_text_file(a.text_file), EncodeOptions{.parse_special = false});
  if (a.max_tokens > 0 && int64_t(tokens.size()) > a.max_tokens) tokens.resize(size_t(a.max_tokens));

  KvCacheConfig kv;
  kv.dtype = parse_kv_cache_dtype(a.kv_cache_dtype);
  kv.num_blocks = (a.context + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize;

  LoadOptions options{{}, !a.json};
  options.scale_rule = a.scale_search == "mse" ? Nvfp4ScaleRule::Mse : Nvfp4ScaleRule::Amax;
  const Checkpoint ck = load_checkpoint(a.model, options);
  ModelWeights weights = ModelWeights::bind(ck);
  if (a.quantize_lm_head) weights.quantize_lm_head();
  if (a.kv_scales == "calibrate") calibrate_kv_scales(weights, tokens, a.context, !a.json);
  else if (a.kv_scales != "checkpoint") fail("--kv-scales must be checkpoint or calibrate, got '{}'", a.kv_scales);
  const std::unique_ptr<Backend> model = make_model(a, weights, kv);

  std::unique_ptr<Checkpoint> ref_ck;
  std::unique_ptr<ModelWeights> ref_weights;
  std::unique_ptr<cpu::CpuBackend> reference;
  if (a.reference == "bf16") {
    // The same weights before NVFP4 (plain and GGUF checkpoints; an NVFP4 checkpoint has no other
    // weights, so its reference differs in the KV cache only), with a BF16 KV cache.
    LoadOptions o{{}, false};
    o.keep_16bit = true;
    ref_ck = std::make_unique<Checkpoint>(load_checkpoint(a.model, o));
    ref_weights = std::make_unique<ModelWeights>(ModelWeights::bind(*ref_ck, /*allow_dense=*/true));
    KvCacheConfig ref_kv = kv;
    ref_kv.dtype = KvCacheDtype::Bf16;
    reference = std::make_unique<cpu::CpuBackend>(*ref_weights, ref_kv);
  } else if (a.reference == "nvfp4") {
    // The same NVFP4 weights and KV cache with the engine's BF16 products: what --prefill-products
    // fp8 (or float32) alone changes.
    if (a.prefill_products == "bf16")
      fail("--reference nvfp4 compares the engine's BF16 products against --prefill-products fp8 or float32; pass one");
    reference = std::make_unique<cpu::CpuBackend>(weights, kv);
  } else if (a.reference == "cpu") {
    // The same NVFP4 weights and KV cache on the CPU backend, the specification: how far the
    // GPU's arithmetic moves the predictions (with --device cpu, the same computation twice).
    reference = std::make_unique<cpu::CpuBackend>(weights, kv);
  } else if (a.reference != "none") {
    fail("--reference must be bf16, nvfp4, cpu or none, got '{}'", a.reference);
  }
  const EvalResult r = evaluate(*model, reference.get(), tokens, a.context);
  if (a.json) {
    fmt::print("{{\"tokens\": {}, \"predictions\": {}, \"perplexity\": {:.6f}, \"reference_perplexity\": {:.6f}, "
               "\"mean_kl\": {:.6g}, \"top1_agreement\": {:.6f}, \"kv_cache_dtype\": \"{}\", \"context\": {}, "
               "\"lm_head\": \"{}\", \"prefill_products\": \"{}\", \"device\": \"{}\", \"reference\": \"{}\"}}\n",
               tokens.size(), r.predictions, r.perplexity(), r.reference_perplexity(), r.mean_kl(),
               r.top1_agreement(), a.kv_cache_dtype, a.context, weights.lm_head_nvfp4 ? "nvfp4" : "16-bit",
               a.prefill_products, a.device, a.reference);
    return;
  }
  fmt::print("tokens {} ({} predictions, windows of {})\n", tokens.size(), r.predictions, a.context);
  fmt::print("perplexity  NVFP4 weights ({} lm_head) + {} KV: {:.4f}\n", weights.lm_head_nvfp4 ? "NVFP4" : "16-bit",
             a.kv_cache_dtype, r.perplexity());
  if (reference) {
    fmt::print("perplexity  {}: {:.4f} (ratio {:.4f})\n", reference_label(a.reference), r.reference_perplexity(),
               r.perplexity() / r.reference_perplexity());
    fmt::print("mean KL(reference || NVFP4): {:.5f} nats; top-1 agreement {:.2f}%\n", r.mean_kl(),
               100 * r.top1_agreement());
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval",
      "Measure what NVFP4 weights and the FP8 KV cache cost: perplexity of MODEL on a text, and\n"
      "against the same weights kept 16-bit (BF16 KV): perplexity ratio, mean KL divergence per\n"
      "token and top-1 agreement. The model runs on the CPU backend or the GPU (--device cuda);\n"
      "references always run on the CPU backend.");
  cmd->add_option("MODEL", a->model, "model folder or .gguf file")->required();
  cmd->add_option("--text", a->text_file, "UTF-8 text file to score")->required()->check(CLI::ExistingFile);
  cmd->add_option("--tokenizer", a->tokenizer,
                  "folder with tokenizer.json (default: the model folder, or a GGUF's own tokenizer)");
  cmd->add_option("--scale-search", a->scale_search,
                  "block scales when quantizing at load (plain and GGUF models): amax or mse")
      ->capture_default_str()
      ->check(CLI::IsMember({"amax", "mse"}));
  cmd->add_option("--kv-scales", a->kv_scales,
                  "FP8 KV scales: checkpoint (k_scale/v_scale when it has them, else 1.0) or calibrate "
                  "(amax / 448 per layer from the text's first window)")
      ->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda: the backend the scored model runs on")->capture_default_str();
  cmd->add_option("--reference", a->reference,
                  "bf16 (compare with 16-bit weights), nvfp4 (the same NVFP4 model with the engine's BF16 "
                  "products, with --prefill-products fp8 or float32), cpu (the same NVFP4 model on the CPU "
                  "backend: how far the GPU moves it) or none")
      ->capture_default_str();
  cmd->add_option("--kv-cache-dtype", a->kv_cache_dtype, "fp8 or bf16, for the NVFP4 model")->capture_default_str();
  cmd->add_option("--context", a->context, "tokens per scored window")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--max-tokens", a->max_tokens, "score only the first N tokens of the text (0: all)");
  cmd->add_option("--prefill-products", a->prefill_products,
                  "bf16: activations rounded to BF16 into every product, as the GPU computes (the engine's "
                  "arithmetic); float32: unrounded; fp8: besides, the projections of windows over 64 tokens "
                  "with E4M3 weights (per-row scale) and E4M3 activations (per-token scale), as an FP8 "
                  "tensor-core GEMM would take them")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "float32", "fp8"}));
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->add_flag("--quantize-lm-head", a->quantize_lm_head,
                "quantize a 16-bit lm_head to NVFP4 at load, to measure what that costs in accuracy");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace fp4llm::cli
