#include "cli/commands.hpp"
#include "util/error.hpp"

namespace fp4llm::cli {

// Placeholder until the tokenizer issue lands: the command exists and says so.
void add_chat_template_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat-template", "(not yet implemented)");
  cmd->allow_extras();
  cmd->callback([] { fail("'chat-template' is not implemented yet"); });
}

}  // namespace fp4llm::cli
