#include <fmt/format.h>

#include "cli/commands.hpp"
#include "model/model_summary.hpp"

namespace fp4llm::cli {

namespace {

std::string gb(uint64_t bytes) { return fmt::format("{:.3f} GB", bytes / 1e9); }
std::string billions(int64_t n) { return fmt::format("{:.3f} B", n / 1e9); }

void print_summary(const std::string& dir, const ModelSummary& s) {
  const ModelConfig& c = s.config;
  fmt::print("model         {}\n", dir);
  fmt::print("architecture  {}\n", c.architecture);
  fmt::print("layers        {} (hidden {}, heads {} / {} kv, head_dim {}, vocab {}{})\n",
             c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim, c.vocab_size,
             c.num_experts ? fmt::format(", {} experts, top-{}", c.num_experts, c.experts_per_token)
                           : "");
  if (c.sliding_window)
    fmt::print("attention     {} sliding-window layers (window {}), {} full\n",
               c.num_sliding_layers(), c.sliding_window, c.num_layers - c.num_sliding_layers());
  fmt::print("format        {}{}\n", format_name(s.scheme.format),
             s.scheme.quant_algo.empty() ? "" : " (quant_algo " + s.scheme.quant_algo + ")");
  fmt::print("parameters    {} ({} in {} NVFP4 linears, {} in {} other tensors)\n",
             billions(s.linear_params + s.other_params), billions(s.linear_params), s.num_linears,
             billions(s.other_params), s.num_other_tensors);
  fmt::print("on disk       {}\n", gb(s.file_bytes));
  fmt::print("GPU weights   {} (NVFP4 linears {}, other tensors {})\n",
             gb(s.linear_bytes + s.other_bytes), gb(s.linear_bytes), gb(s.other_bytes));
  const int64_t full_layers = c.num_layers - c.num_sliding_layers();
  fmt::print("KV cache FP8  {} bytes/token", c.kv_bytes_per_token_per_layer() * c.num_layers);
  if (c.sliding_window)
    fmt::print(" ({} bytes/token beyond the {}-token window)",
               c.kv_bytes_per_token_per_layer() * full_layers, c.sliding_window);
  fmt::print("; {} at 4096 tokens\n", gb(uint64_t(c.kv_cache_bytes(4096))));
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  struct Args {
    std::string dir;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "inspect",
      "Describe a model folder: architecture, parameter count, checkpoint format, the bytes its\n"
      "weights take in GPU memory as fp4llm holds them, and the FP8 KV cache bytes per token.\n"
      "Every tensor is checked on the way, so a corrupt checkpoint fails here.");
  cmd->add_option("MODEL_DIR", args->dir, "Hugging Face model folder")->required();
  cmd->add_flag("--json", args->json, "print one JSON object instead of text");
  cmd->callback([args] {
    const ModelSummary s = summarize_model(args->dir);
    if (args->json)
      fmt::print("{}\n", s.to_json().dump(2));
    else
      print_summary(args->dir, s);
  });
}

}  // namespace fp4llm::cli
