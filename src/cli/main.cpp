#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "util/build_commit.hpp"
#include "util/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "fp4llm: NVFP4 LLM inference for GPUs without FP4 tensor cores (Hopper, Ada).\n"
      "Weights stay 4-bit (E2M1 + E4M3 block scales), the KV cache is FP8.",
      "fp4llm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fmt::format("fp4llm 0.1.0 (commit {})", fp4llm::build_commit()));
  fp4llm::cli::add_run_command(app);
  fp4llm::cli::add_eval_command(app);
  fp4llm::cli::add_bench_command(app);
  fp4llm::cli::add_serve_command(app);
  fp4llm::cli::add_inspect_command(app);
  fp4llm::cli::add_quantize_command(app);
  fp4llm::cli::add_tokenize_command(app);
  fp4llm::cli::add_chat_template_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const fp4llm::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
