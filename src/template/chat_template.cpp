#include "template/chat_template.hpp"

#include <fstream>
#include <sstream>

#include "util/error.hpp"
#include "util/text_file.hpp"

namespace fp4llm {

namespace {

using ordered_json = nlohmann::ordered_json;

ordered_json read_ordered_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {}", path.string());
  try {
    return ordered_json::parse(in);
  } catch (const std::exception& e) {
    fail("{} is not valid JSON: {}", path.string(), e.what());
  }
}

// A token in tokenizer_config.json is a string or an AddedToken object with "content".
std::optional<std::string> token_text(const ordered_json& token) {
  if (token.is_string()) return token.get<std::string>();
  if (token.is_object() && token.contains("content") && token["content"].is_string())
    return token["content"].get<std::string>();
  return std::nullopt;
}

std::string pick_template(const ordered_json& chat_template, const std::string& name,
                          const std::string& where) {
  if (chat_template.is_string()) return chat_template.get<std::string>();
  if (!chat_template.is_array()) fail("{}: chat_template must be a string or a list", where);
  std::string names;
  for (const auto& entry : chat_template) {
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template")) continue;
    if (entry["name"] == name && entry["template"].is_string()) return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + entry["name"].dump();
  }
  fail("{}: no chat template named '{}' (available: {})", where, name, names);
}

}  // namespace

ordered_json special_tokens_from_config(const ordered_json& config) {
  ordered_json tokens = ordered_json::object();
  if (!config.is_object()) return tokens;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                          "mask_token"}) {
    if (!config.contains(key)) continue;
    if (auto text = token_text(config[key]); text && !text->empty()) tokens[key] = *text;
  }
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    ordered_json list = ordered_json::array();
    for (const auto& t : config["additional_special_tokens"])
      if (auto text = token_text(t)) list.push_back(*text);
    if (!list.empty()) tokens["additional_special_tokens"] = list;
  }
  // Model-specific special tokens (Gemma 3's boi_token, image_token, ...) join the map too.
  if (config.contains("extra_special_tokens") && config["extra_special_tokens"].is_object()) {
    for (const auto& [key, value] : config["extra_special_tokens"].items())
      if (auto text = token_text(value); text && !text->empty()) tokens[key] = *text;
  }
  return tokens;
}

ChatTemplate ChatTemplate::load(const std::filesystem::path& model_dir, const std::string& name) {
  const auto config_path = model_dir / "tokenizer_config.json";
  const auto jinja_path = model_dir / "chat_template.jinja";
  const bool has_config = std::filesystem::exists(config_path);
  const ordered_json config = has_config ? read_ordered_json(config_path) : ordered_json::object();
  std::string source;
  if (std::filesystem::exists(jinja_path)) {
    source = read_text_file(jinja_path);
  } else if (config.is_object() && config.contains("chat_template")) {
    source = pick_template(config["chat_template"], name, config_path.string());
  } else {
    fail("{} has no chat template (neither chat_template.jinja nor a \"chat_template\" in {})",
         model_dir.string(), config_path.filename().string());
  }
  try {
    return from_source(source, config);
  } catch (const Error& e) {
    fail("chat template of {}: {}", model_dir.string(), e.what());
  }
}

ChatTemplate ChatTemplate::from_source(const std::string& source, const ordered_json& config) {
  ChatTemplate t;
  t.template_ = tmpl::Template::parse(source);
  t.special_tokens_ = special_tokens_from_config(config);
  return t;
}

std::string ChatTemplate::render(const ordered_json& messages, const ChatOptions& options,
                                 const tmpl::RenderLimits& limits) const {
  using tmpl::Value;
  if (!messages.is_array()) fail("chat messages must be a JSON array");
  if (!options.extra_kwargs.is_object()) fail("chat template kwargs must be a JSON object");
  std::vector<std::pair<std::string, Value>> vars;
  for (const auto& [key, value] : special_tokens_.items()) vars.emplace_back(key, Value::from_json(value));
  vars.emplace_back("messages", Value::from_json(messages));
  vars.emplace_back("tools", options.tools ? Value::from_json(*options.tools) : Value::none());
  vars.emplace_back("documents", options.documents ? Value::from_json(*options.documents) : Value::none());
  vars.emplace_back("add_generation_prompt", Value::boolean(options.add_generation_prompt));
  for (const auto& [key, value] : options.extra_kwargs.items()) {
    if (key == "messages" || key == "tools" || key == "documents" || key == "add_generation_prompt")
      fail("chat template kwarg '{}' clashes with a variable set by the renderer", key);
    vars.emplace_back(key, Value::from_json(value));
  }
  return template_.render(vars, limits);
}

}  // namespace fp4llm
