#include <fmt/format.h>

#include "cli/commands.hpp"
#include "io/quantize_checkpoint.hpp"

namespace fp4llm::cli {

void add_quantize_command(CLI::App& app) {
  struct Args {
    std::string src, dst;
    QuantizeOptions options;
    double max_shard_gb = 5.0;
    bool quiet = false;
    std::string scale_search = "amax";
  };
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
  cmd->add_flag("--quiet", args->quiet, "no progress bar or summary");
  cmd->callback([args] {
    args->options.max_shard_bytes = uint64_t(args->max_shard_gb * 1e9);
    args->options.progress = !args->quiet;
    args->options.scale_rule = args->scale_search == "mse" ? Nvfp4ScaleRule::Mse : Nvfp4ScaleRule::Amax;
    const QuantizeReport r = quantize_checkpoint(args->src, args->dst, args->options);
    if (!args->quiet)
      fmt::print("quantized {} linear layers to NVFP4, copied {} tensors: {:.3f} GB -> {:.3f} GB "
                 "in {} file(s) at {}\n",
                 r.quantized_linears, r.copied_tensors, r.bytes_in / 1e9, r.bytes_out / 1e9,
                 r.files.size(), args->dst);
  });
}

}  // namespace fp4llm::cli
