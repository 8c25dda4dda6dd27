#include "cli/commands.hpp"
#include "util/error.hpp"

namespace fp4llm::cli {

// Placeholder until the tokenizer issue lands: the command exists and says so.
void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "(not yet implemented)");
  cmd->allow_extras();
  cmd->callback([] { fail("'tokenize' is not implemented yet"); });
}

}  // namespace fp4llm::cli
