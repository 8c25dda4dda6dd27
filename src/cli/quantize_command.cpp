#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "backend/cpu/kv_calibration.hpp"
#include "cli/commands.hpp"
#include "io/checkpoint.hpp"
#include "io/quantize_checkpoint.hpp"
#include "model/model_weights.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/text_file.hpp"

namespace fp4llm::cli {

namespace {

struct QuantizeArgs {
  std::string src, dst;
  QuantizeOptions options;
  double max_shard_gb = 5.0;
  bool quiet = false;
  std::string scale_search = "amax", kv_scales = "none", calibration_text;
  int64_t calibration_tokens = 512;
};

// Loads SRC quantized in memory (the same weights the output will hold) and measures per-layer
// K/V amax over the calibration text.
cpu::KvCalibration calibrate(const QuantizeArgs& a) {
  const Tokenizer tokenizer = Tokenizer::load(a.src);
  const std::vector<int32_t> tokens =
      tokenizer.encode(read_text_file(a.calibration_text), EncodeOptions{.parse_special = false});
  LoadOptions load{a.options.exclude, a.options.progress};
  load.scale_rule = a.options.scale_rule;
  const Checkpoint ck = load_checkpoint(a.src, load);
  if (!a.quiet)  // one CPU forward pass: minutes for a large model on few cores, so say what runs
    fmt::print("calibrating KV scales: a CPU forward pass over {} tokens of {}\n",
               std::min<int64_t>(a.calibration_tokens, int64_t(tokens.size())), a.calibration_text);
  std::fflush(stdout);
  const cpu::KvCalibration c = cpu::calibrate_kv_scales(ModelWeights::bind(ck), tokens, a.calibration_tokens);
  if (!a.quiet)
    fmt::print("KV scales calibrated on {} tokens of {}: amax / 448 per layer (largest ratio between two KV "
               "heads of a layer: {:.2f})\n", c.tokens, a.calibration_text, c.widest_head_ratio);
  return c;
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  using Args = QuantizeArgs;
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "quantize",
      "Quantize a BF16/F16/F32 Hugging Face checkpoint to NVFP4 in NVIDIA ModelOpt's format.\n"
      "Projections (*_proj) become E2M1 codes with one E4M3 scale per 16 inputs and one FP32\n"
      "scale per tensor; lm_head, embeddings, norms, MoE routers and vision parts stay as they\n"
      "are. Tokenizer and config files are copied; the output loads in fp4llm and in ModelOpt-\n"
      "aware engines.");
  cmd->add_option("SRC_DIR", args->src, "Hugging Face model folder with 16/32-bit weights")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("DST_DIR", args->dst, "output folder (created; must be empty)")->required();
  cmd->add_option("--exclude", args->options.exclude,
                  "module name patterns (fnmatch, e.g. 'model.layers.0.*') to keep in 16 bits; "
                  "repeatable");
  cmd->add_option("--max-shard-size", args->max_shard_gb, "largest output file, in GB")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--scale-search", args->scale_search,
                  "block scales: amax (ModelOpt's amax/6) or mse (best of amax/6 x {1, 0.95, ..., "
                  "0.75} by squared error)")
      ->capture_default_str()
      ->check(CLI::IsMember({"amax", "mse"}));
  cmd->add_option("--kv-scales", args->kv_scales,
                  "FP8 KV-cache scales to store: none (engines use 1.0) or calibrate (amax / 448 per "
                  "layer from a CPU pass over --calibration-text, written as ModelOpt's k_scale / "
                  "v_scale; for models whose K or V leave E4M3's range, see docs/ACCURACY.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "calibrate"}));
  cmd->add_option("--calibration-text", args->calibration_text,
                  "UTF-8 text for --kv-scales calibrate, tokenized with SRC_DIR's tokenizer")
      ->check(CLI::ExistingFile);
  cmd->add_option("--calibration-tokens", args->calibration_tokens, "tokens of the text the calibration reads")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_flag("--quiet", args->quiet, "no progress bar or summary");
  cmd->callback([args] {
    args->options.max_shard_bytes = uint64_t(args->max_shard_gb * 1e9);
    args->options.progress = !args->quiet;
    args->options.scale_rule = args->scale_search == "mse" ? Nvfp4ScaleRule::Mse : Nvfp4ScaleRule::Amax;
    if (args->kv_scales == "calibrate") {
      if (args->calibration_text.empty()) fail("--kv-scales calibrate needs --calibration-text FILE");
      const cpu::KvCalibration c = calibrate(*args);
      args->options.kv_scales = c.scales;
      args->options.kv_scale_layers_prefix = c.layers_prefix;
    } else if (!args->calibration_text.empty()) {
      fail("--calibration-text is only read with --kv-scales calibrate");
    }
    const QuantizeReport r = quantize_checkpoint(args->src, args->dst, args->options);
    if (!args->quiet)
      fmt::print("quantized {} linear layers to NVFP4, copied {} tensors: {:.3f} GB -> {:.3f} GB "
                 "in {} file(s) at {}\n",
                 r.quantized_linears, r.copied_tensors, r.bytes_in / 1e9, r.bytes_out / 1e9,
                 r.files.size(), args->dst);
  });
}

}  // namespace fp4llm::cli
