#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/commands.hpp"
#include "template/chat_template.hpp"
#include "util/error.hpp"
#include "util/text_file.hpp"

namespace fp4llm::cli {

namespace {

using ordered_json = nlohmann::ordered_json;

struct Args {
  std::string model_dir;
  std::string messages_file;
  std::string tools_file;
  std::string template_file;
  std::string enable_thinking;
  std::string kwargs;
  std::string batch_file;
  bool add_generation_prompt = false;
};

// A file, or standard input for "-".
std::string read_text(const std::string& path) {
  if (path != "-") return read_text_file(path);
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

ordered_json parse_json(const std::string& text, const std::string& what) {
  try {
    return ordered_json::parse(text);
  } catch (const std::exception& e) {
    fail("{} is not valid JSON: {}", what, e.what());
  }
}

ChatTemplate load_template(const std::string& model_dir, const std::string& template_file) {
  if (template_file.empty()) {
    if (model_dir.empty()) fail("give MODEL_DIR or --template-file");
    return ChatTemplate::load(model_dir);
  }
  ordered_json config = ordered_json::object();
  const auto config_path = std::filesystem::path(model_dir) / "tokenizer_config.json";
  if (!model_dir.empty() && std::filesystem::exists(config_path))
    config = parse_json(read_text(config_path.string()), config_path.string());
  return ChatTemplate::from_source(read_text(template_file), config);
}

void write_stdout(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void run_single(const Args& a) {
  if (a.messages_file.empty()) fail("--messages-file is required (or use --batch)");
  const ChatTemplate chat = load_template(a.model_dir, a.template_file);
  ordered_json input = parse_json(read_text(a.messages_file), a.messages_file);
  ChatOptions options;
  ordered_json messages = input;
  if (input.is_object()) {
    messages = input.value("messages", ordered_json::array());
    if (input.contains("tools") && !input["tools"].is_null()) options.tools = input["tools"];
    if (input.contains("documents") && !input["documents"].is_null()) options.documents = input["documents"];
  }
  if (!a.tools_file.empty()) options.tools = parse_json(read_text(a.tools_file), a.tools_file);
  options.add_generation_prompt = a.add_generation_prompt;
  if (!a.kwargs.empty()) options.extra_kwargs = parse_json(a.kwargs, "--kwargs");
  if (!options.extra_kwargs.is_object()) fail("--kwargs must be a JSON object");
  if (!a.enable_thinking.empty()) {
    if (a.enable_thinking != "true" && a.enable_thinking != "false")
      fail("--enable-thinking takes true or false");
    options.extra_kwargs["enable_thinking"] = a.enable_thinking == "true";
  }
  write_stdout(chat.render(messages, options));
}

ordered_json render_case(const ordered_json& c, std::map<std::string, ChatTemplate>& cache) {
  if (c.contains("template")) {
    const auto t = tmpl::Template::parse(c["template"].get<std::string>());
    return t.render_json(c.value("variables", ordered_json::object()));
  }
  const std::string dir = c.at("model_dir").get<std::string>();
  auto it = cache.find(dir);
  if (it == cache.end()) it = cache.emplace(dir, ChatTemplate::load(dir)).first;
  ChatOptions options;
  if (c.contains("tools") && !c["tools"].is_null()) options.tools = c["tools"];
  options.add_generation_prompt = c.value("add_generation_prompt", false);
  options.extra_kwargs = c.value("kwargs", ordered_json::object());
  return it->second.render(c.at("messages"), options);
}

// One JSON object per input line; one {"output": ...} or {"error": ...} line per case.
void run_batch(const std::string& path) {
  std::istringstream lines(read_text(path));
  std::map<std::string, ChatTemplate> cache;
  std::string line;
  std::string out;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ordered_json result;
    try {
      result["output"] = render_case(parse_json(line, "batch line"), cache);
    } catch (const std::exception& e) {
      result["error"] = e.what();
    }
    out += result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_stdout(out);
}

}  // namespace

void add_chat_template_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "chat-template",
      "Render a model's chat template (Jinja) for a conversation and print the prompt exactly,\n"
      "as transformers' apply_chat_template(..., tokenize=False) does.\n"
      "The template is MODEL_DIR/chat_template.jinja or tokenizer_config.json's chat_template;\n"
      "bos_token, eos_token, ... come from tokenizer_config.json.\n"
      "--messages-file holds a JSON array of messages, or an object\n"
      "  {\"messages\": [...], \"tools\": [...], \"documents\": [...]}.");
  cmd->add_option("MODEL_DIR", args->model_dir, "Hugging Face model folder");
  cmd->add_option("--messages-file", args->messages_file, "JSON messages ('-' for stdin)");
  cmd->add_option("--tools-file", args->tools_file, "JSON array of tool schemas");
  cmd->add_flag("--add-generation-prompt", args->add_generation_prompt,
                "end with the header of an assistant turn");
  cmd->add_option("--enable-thinking", args->enable_thinking, "true or false (Qwen3's enable_thinking)")
      ->check(CLI::IsMember({"true", "false"}));
  cmd->add_option("--kwargs", args->kwargs, "extra template variables as a JSON object");
  cmd->add_option("--template-file", args->template_file,
                  "render this template file instead of the model's");
  cmd->add_option("--batch", args->batch_file,
                  "JSONL test mode: each line {\"template\": T, \"variables\": {...}} or\n"
                  "{\"model_dir\": D, \"messages\": [...], \"tools\": ..., \"add_generation_prompt\": b,\n"
                  "\"kwargs\": {...}}; prints one {\"output\": ...} or {\"error\": ...} line each");
  cmd->callback([args] {
    if (!args->batch_file.empty())
      run_batch(args->batch_file);
    else
      run_single(*args);
  });
}

}  // namespace fp4llm::cli
