// The `logprobs` objects of OpenAI's two APIs. Chat: {"content": [{token, logprob, bytes,
// top_logprobs}]}. Completions: parallel lists tokens / token_logprobs / top_logprobs (a map
// token -> logprob) / text_offset. A token's text is its own decoding (a piece of a multi-byte
// character decodes to U+FFFD, as with vLLM).
#pragma once

#include <vector>

#include "engine/engine_request.hpp"
#include "server/json_fields.hpp"
#include "tokenizer/tokenizer.hpp"

namespace fp4llm::server {

// The items of "content" for `tokens`, appended to `content` (an array).
void append_chat_logprobs(Json& content, const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer);

class CompletionLogprobs {
 public:
  // `text_offset` continues from `offset`, the length of the text before these tokens.
  void append(const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer, size_t& offset);
  Json json() const;

 private:
  Json tokens_ = Json::array(), token_logprobs_ = Json::array(), top_ = Json::array(), offsets_ = Json::array();
};

}  // namespace fp4llm::server
