#include "server/chat_prompt.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "server/api_error.hpp"
#include "util/error.hpp"

namespace fp4llm::server {

namespace {

constexpr std::array<std::string_view, 5> kRoles = {"system", "user", "assistant", "tool", "developer"};

// OpenAI content: a string, null (assistant with tool calls), or a list of parts of which only
// text parts are supported; they are joined with newlines as vLLM does.
Json normalise_content(const Json& content, size_t i) {
  if (content.is_string() || content.is_null()) return content;
  if (!content.is_array())
    bad_request(fmt::format("messages[{}].content must be a string or an array of content parts", i), "messages");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || part.value("type", Json()) != "text" || !part.contains("text") || !part["text"].is_string())
      bad_request(fmt::format("messages[{}].content: only parts of type 'text' with a string 'text' are supported", i),
                  "messages");
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

Json normalise_messages(const Json& body) {
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) bad_request("'messages' is required", "messages");
  if (!it->is_array() || it->empty()) bad_request("'messages' must be a non-empty array", "messages");
  Json out = Json::array();
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    if (!m.is_object()) bad_request(fmt::format("messages[{}] must be an object", i), "messages");
    if (!m.contains("role") || !m["role"].is_string())
      bad_request(fmt::format("messages[{}].role must be a string", i), "messages");
    const std::string role = m["role"];
    if (std::find(kRoles.begin(), kRoles.end(), role) == kRoles.end())
      bad_request(fmt::format("messages[{}].role '{}' is not one of system, user, assistant, tool, developer", i, role),
                  "messages");
    Json n = m;
    n["content"] = normalise_content(m.value("content", Json()), i);
    out.push_back(std::move(n));
  }
  return out;
}

ChatOptions chat_options(const Json& body) {
  ChatOptions o;
  o.add_generation_prompt = opt_bool(body, "add_generation_prompt").value_or(true);
  auto tools = body.find("tools");
  if (tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) bad_request("'tools' must be an array", "tools");
    o.tools = *tools;
  }
  auto kwargs = body.find("chat_template_kwargs");
  if (kwargs != body.end() && !kwargs->is_null()) {
    if (!kwargs->is_object()) bad_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
    o.extra_kwargs = *kwargs;
  }
  return o;
}

bool ends_inside_think(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return text.ends_with("<think>");
}

}  // namespace

ChatPrompt chat_prompt(const Json& body, const ServingModel& model) {
  if (!model.chat_template)
    bad_request("this model has no chat template; use /v1/completions", "messages");
  const Json messages = normalise_messages(body);
  const ChatOptions options = chat_options(body);
  ChatPrompt p;
  try {
    p.text = model.chat_template->render(messages, options);
    // The template writes BOS and the other special tokens itself.
    p.tokens = model.tokenizer.encode(p.text, EncodeOptions{.add_special_tokens = false});
  } catch (const std::exception& e) {
    bad_request(fmt::format("the chat template could not render these messages: {}", e.what()), "messages");
  }
  p.opens_reasoning = model.split_reasoning && ends_inside_think(p.text);
  return p;
}

}  // namespace fp4llm::server
