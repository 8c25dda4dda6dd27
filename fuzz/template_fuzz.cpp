// libFuzzer target for the chat template engine. The first byte picks what the rest is:
//   even: template source, parsed and rendered with a fixed conversation;
//   odd:  a messages JSON array rendered through the real Qwen3 and Gemma3 templates.
// Errors (fp4llm::Error, JSON parse errors) are expected; crashes, sanitizer reports, hangs
// and any other exception are findings.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "template/chat_template.hpp"
#include "template/template.hpp"
#include "util/error.hpp"

#ifndef FP4LLM_FUZZ_TOKENIZERS_DIR
#define FP4LLM_FUZZ_TOKENIZERS_DIR "../shared/testdata/tokenizers"
#endif

namespace {

using json = nlohmann::ordered_json;

fp4llm::tmpl::RenderLimits fuzz_limits() {
  fp4llm::tmpl::RenderLimits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 200'000;
  return limits;
}

const json& fixed_messages() {
  static const json messages = json::parse(R"([
    {"role": "system", "content": "sys"},
    {"role": "user", "content": "hi {{ x }} é"},
    {"role": "assistant", "content": "<think>\nr\n</think>\n\nok", "tool_calls": [
      {"type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [1.5, null]}}}]},
    {"role": "tool", "content": "res"},
    {"role": "user", "content": [{"type": "text", "text": " t "}]}
  ])");
  return messages;
}

std::vector<fp4llm::ChatTemplate>& real_templates() {
  static std::vector<fp4llm::ChatTemplate> templates = [] {
    std::vector<fp4llm::ChatTemplate> out;
    const char* dir = std::getenv("FP4LLM_FUZZ_TOKENIZERS_DIR");
    const std::string root = dir ? dir : FP4LLM_FUZZ_TOKENIZERS_DIR;
    for (const char* family : {"qwen3", "gemma3"}) out.push_back(fp4llm::ChatTemplate::load(root + "/" + family));
    return out;
  }();
  return templates;
}

void fuzz_template_source(const std::string& source) {
  try {
    const auto t = fp4llm::tmpl::Template::parse(source);
    const auto tokens = json::parse(R"({"bos_token": "<s>", "eos_token": "</s>"})");
    fp4llm::ChatOptions options;
    options.add_generation_prompt = true;
    options.tools = json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
    fp4llm::ChatTemplate::from_source(source, tokens).render(fixed_messages(), options, fuzz_limits());
  } catch (const fp4llm::Error&) {
  }
}

void fuzz_messages(const std::string& text, uint8_t selector) {
  json messages;
  try {
    messages = json::parse(text);
  } catch (const json::exception&) {
    return;
  }
  fp4llm::ChatOptions options;
  options.add_generation_prompt = (selector & 2) != 0;
  if (selector & 4) options.extra_kwargs["enable_thinking"] = (selector & 8) != 0;
  if (messages.is_object() && messages.contains("tools")) options.tools = messages["tools"];
  if (messages.is_object() && messages.contains("messages")) messages = json(messages["messages"]);
  for (const auto& t : real_templates()) {
    try {
      t.render(messages, options, fuzz_limits());
    } catch (const fp4llm::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 8192) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1)
    fuzz_messages(rest, data[0]);
  else
    fuzz_template_source(rest);
  return 0;
}
