#include "server/logprobs_json.hpp"

#include <algorithm>

namespace fp4llm::server {

namespace {

std::string token_text(const Tokenizer& tokenizer, int32_t id) {
  const int32_t one[1] = {id};
  return tokenizer.decode(one, /*skip_special_tokens=*/false);
}

// JSON has no -inf; vLLM reports -9999 for impossible tokens.
double finite(float logprob) { return std::max(double(logprob), -9999.0); }

Json entry(const Tokenizer& tokenizer, int32_t id, float logprob) {
  const std::string text = token_text(tokenizer, id);
  Json bytes = Json::array();
  for (unsigned char c : text) bytes.push_back(int(c));
  return Json{{"token", text}, {"logprob", finite(logprob)}, {"bytes", bytes}};
}

}  // namespace

void append_chat_logprobs(Json& content, const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer) {
  for (const auto& t : tokens) {
    Json item = entry(tokenizer, t.id, t.logprob);
    Json top = Json::array();
    for (const auto& alt : t.top) top.push_back(entry(tokenizer, alt.id, alt.logprob));
    item["top_logprobs"] = std::move(top);
    content.push_back(std::move(item));
  }
}

void CompletionLogprobs::append(const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer,
                                size_t& offset) {
  for (const auto& t : tokens) {
    const std::string text = token_text(tokenizer, t.id);
    tokens_.push_back(text);
    token_logprobs_.push_back(finite(t.logprob));
    Json top = Json::object();
    for (const auto& alt : t.top) top[token_text(tokenizer, alt.id)] = finite(alt.logprob);
    top_.push_back(std::move(top));
    offsets_.push_back(offset);
    offset += text.size();
  }
}

Json CompletionLogprobs::json() const {
  return Json{{"tokens", tokens_}, {"token_logprobs", token_logprobs_}, {"top_logprobs", top_}, {"text_offset", offsets_}};
}

}  // namespace fp4llm::server
