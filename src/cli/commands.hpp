// Each fp4llm subcommand registers itself on the CLI11 app; main() only dispatches.
#pragma once

#include <CLI/CLI.hpp>

namespace fp4llm::cli {

void add_inspect_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_chat_template_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace fp4llm::cli
