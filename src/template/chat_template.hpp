// The chat template of a Hugging Face model folder, rendered as transformers'
// apply_chat_template(messages, tools=..., add_generation_prompt=..., **kwargs) renders it.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "template/template.hpp"

namespace fp4llm {

struct ChatOptions {
  bool add_generation_prompt = false;
  std::optional<nlohmann::ordered_json> tools;      // a list of tool schemas; None when absent
  std::optional<nlohmann::ordered_json> documents;  // None when absent
  // Further template variables, e.g. {"enable_thinking": false}; they override special tokens.
  nlohmann::ordered_json extra_kwargs = nlohmann::ordered_json::object();
};

class ChatTemplate {
 public:
  // chat_template.jinja in `model_dir` when present, else tokenizer_config.json's
  // "chat_template" (a string, or a list of {name, template} from which `name` is taken).
  // Special-token variables (bos_token, ...) come from tokenizer_config.json.
  static ChatTemplate load(const std::filesystem::path& model_dir, const std::string& name = "default");
  // `tokenizer_config` supplies the special tokens; it may be an empty object.
  static ChatTemplate from_source(const std::string& source,
                                  const nlohmann::ordered_json& tokenizer_config);

  // `messages`: a JSON array of message objects. Throws Error with the template's own message
  // when it calls raise_exception (e.g. roles that do not alternate).
  std::string render(const nlohmann::ordered_json& messages, const ChatOptions& options,
                     const tmpl::RenderLimits& limits = {}) const;

  // The template variables made from tokenizer_config.json: bos_token, eos_token, ...
  const nlohmann::ordered_json& special_tokens() const { return special_tokens_; }

 private:
  tmpl::Template template_;
  nlohmann::ordered_json special_tokens_;
};

// The special-token variables transformers passes to a chat template (its special_tokens_map).
nlohmann::ordered_json special_tokens_from_config(const nlohmann::ordered_json& tokenizer_config);

}  // namespace fp4llm
