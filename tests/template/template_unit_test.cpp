// The C++ API of the chat template engine: loading from a model folder, special tokens, error
// messages with positions, and the limits that keep hostile templates bounded. Rendering
// fidelity itself is checked against Python jinja2 by the pytest files beside this one.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "template/chat_template.hpp"
#include "template/template.hpp"
#include "util/error.hpp"

namespace fs = std::filesystem;
using fp4llm::ChatOptions;
using fp4llm::ChatTemplate;
using fp4llm::tmpl::Template;
using json = nlohmann::ordered_json;

namespace {

fs::path tokenizers_dir() {
  const char* shared = std::getenv("FP4LLM_SHARED_DIR");
  if (!shared) throw std::runtime_error("FP4LLM_SHARED_DIR is not set: run through ctest");
  const fs::path dir = fs::path(shared) / "testdata" / "tokenizers";
  if (!fs::exists(dir / "qwen3" / "tokenizer_config.json"))
    throw std::runtime_error("shared test data missing: " + dir.string());
  return dir;
}

std::string render(const std::string& source, const json& vars = json::object(),
                   const fp4llm::tmpl::RenderLimits& limits = {}) {
  return Template::parse(source).render_json(vars, limits);
}

// The message of the Error that `fn` throws ("" when it does not throw).
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const fp4llm::Error& e) {
    return e.what();
  }
  return "";
}

fs::path temp_model_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("fp4llm_template_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

}  // namespace

TEST(ChatTemplate, LoadsRealTemplatesAndSpecialTokens) {
  const ChatTemplate gemma = ChatTemplate::load(tokenizers_dir() / "gemma3");
  EXPECT_EQ(gemma.special_tokens()["bos_token"], "<bos>");
  EXPECT_EQ(gemma.special_tokens()["eos_token"], "<end_of_turn>");
  EXPECT_EQ(gemma.special_tokens()["image_token"], "<image_soft_token>");
  const json messages = json::parse(R"([{"role": "user", "content": " Hi "}])");
  ChatOptions options;
  options.add_generation_prompt = true;
  EXPECT_EQ(gemma.render(messages, options),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");

  const ChatTemplate qwen = ChatTemplate::load(tokenizers_dir() / "qwen3");
  EXPECT_FALSE(qwen.special_tokens().contains("bos_token"));  // null in tokenizer_config.json
  options.extra_kwargs = {{"enable_thinking", false}};
  EXPECT_EQ(qwen.render(messages, options),
            "<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplate, TemplateExceptionCarriesItsMessage) {
  const ChatTemplate gemma = ChatTemplate::load(tokenizers_dir() / "gemma3");
  const json messages = json::parse(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  const std::string error = error_of([&] { gemma.render(messages, ChatOptions{}); });
  EXPECT_NE(error.find("Conversation roles must alternate user/assistant/user/assistant/..."), std::string::npos)
      << error;
  EXPECT_NE(error.find("line 19"), std::string::npos) << error;
}

TEST(ChatTemplate, JinjaFileTakesPrecedenceAndListsPickDefault) {
  const fs::path dir = temp_model_dir("precedence");
  write(dir / "tokenizer_config.json",
        R"({"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>",
            "chat_template": [{"name": "tool_use", "template": "tools"},
                              {"name": "default", "template": "{{ bos_token }}default{{ eos_token }}"}]})");
  EXPECT_EQ(ChatTemplate::load(dir).render(json::array(), {}), "<s>default</s>");
  EXPECT_EQ(ChatTemplate::load(dir, "tool_use").render(json::array(), {}), "tools");
  EXPECT_NE(error_of([&] { ChatTemplate::load(dir, "nope"); }).find("no chat template named 'nope'"),
            std::string::npos);
  write(dir / "chat_template.jinja", "jinja {{ bos_token }}\n");
  EXPECT_EQ(ChatTemplate::load(dir).render(json::array(), {}), "jinja <s>");
  fs::remove_all(dir);
}

TEST(ChatTemplate, MissingTemplateAndClashingKwargsAreErrors) {
  const fs::path dir = temp_model_dir("missing");
  write(dir / "tokenizer_config.json", R"({"eos_token": "</s>"})");
  EXPECT_NE(error_of([&] { ChatTemplate::load(dir); }).find("has no chat template"), std::string::npos);
  write(dir / "chat_template.jinja", "{{ messages | length }}");
  ChatOptions options;
  options.extra_kwargs = {{"messages", 1}};
  EXPECT_NE(error_of([&] { ChatTemplate::load(dir).render(json::array(), options); }).find("clashes"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(Template, SyntaxErrorsNameLineAndColumn) {
  EXPECT_NE(error_of([] { Template::parse("a\n{% if x %}\nb\n{% endfor %}"); }).find("line 4"),
            std::string::npos);
  EXPECT_NE(error_of([] { Template::parse("{{ x "); }).find("line 1, column 1"), std::string::npos);
  EXPECT_NE(error_of([] { Template::parse("\n  {{ [1, 2 }}"); }).find("line 2, column 12"),
            std::string::npos);
  EXPECT_NE(error_of([] { Template::parse("{% include 'x.j2' %}"); }).find("not supported"),
            std::string::npos);
  EXPECT_NE(error_of([] { Template::parse("{% break %}"); }).find("outside a loop"), std::string::npos);
}

TEST(Template, RuntimeErrorsNameTheirPosition) {
  const std::string error = error_of([] { render("ok\n  {{ 1 / 0 }}"); });
  EXPECT_NE(error.find("line 2, column 6"), std::string::npos) << error;
  EXPECT_NE(error.find("division by zero"), std::string::npos) << error;
  EXPECT_NE(error_of([] { render("{{ x | frobnicate }}"); }).find("no filter named 'frobnicate'"),
            std::string::npos);
  EXPECT_NE(error_of([] { render("{{ raise_exception('bad ' ~ 1) }}"); }).find("bad 1"), std::string::npos);
}

TEST(Template, LimitsStopRunawayTemplates) {
  fp4llm::tmpl::RenderLimits small;
  small.max_output_bytes = 1 << 20;
  EXPECT_NE(error_of([&] { render("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", json::object(), small); })
                .find("output exceeds"),
            std::string::npos);
  small.max_steps = 1'000'000;
  EXPECT_NE(error_of([&] {
              render("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
                     json::object(), small);
            })
                .find("steps"),
            std::string::npos);
  EXPECT_NE(error_of([] { Template::parse("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}"); })
                .find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(error_of([] { render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); })
                .find("nested deeper"),
            std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 'x' * 10000000000 }}"); }).find("too large"), std::string::npos);
  // Found by fuzzing: 8 bytes * 4**31 overflowed the size check; '' * 3**31 looped 2**31 times.
  EXPECT_NE(error_of([] { render("{{ 'abcdefgh' * 4 ** 31 }}"); }).find("too large"), std::string::npos);
  EXPECT_EQ(render("{{ '' * 3 ** 31 }}|{{ [] * 3 ** 31 }}"), "|[]");
  EXPECT_NE(error_of([] { render("{{ ('\\n' * 1000000) | indent(1000) }}"); }).find("too large"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 2 ** 64 }}"); }).find("overflow"), std::string::npos);
}

TEST(Template, InvalidUtf8IsRejected) {
  EXPECT_NE(error_of([] { Template::parse("bad \xff byte"); }).find("UTF-8"), std::string::npos);
}
