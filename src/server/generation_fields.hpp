// The request fields /v1/chat/completions and /v1/completions share: model, length, sampling,
// stops, n, streaming and logprobs (OpenAI's names plus vLLM's extras top_k, min_p,
// repetition_penalty, ignore_eos, stop_token_ids, skip_special_tokens). Parsed and
// type-checked here; checks that need the prompt length happen when the request is built.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/json_fields.hpp"

namespace fp4llm::server {

inline constexpr int32_t kMaxChoices = 16;       // `n`
inline constexpr int32_t kMaxTopLogprobs = 20;   // as vLLM and OpenAI

struct GenerationFields {
  std::optional<std::string> model;
  std::optional<int64_t> max_tokens;
  std::optional<double> temperature, top_p, min_p;
  std::optional<int64_t> top_k;
  double presence_penalty = 0, frequency_penalty = 0, repetition_penalty = 1;
  std::optional<int64_t> seed;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  int32_t n = 1;
  bool stream = false, include_usage = false;
  bool ignore_eos = false, skip_special_tokens = true;
  int32_t top_logprobs = -1;  // -1: no logprobs
};

// `chat`: logprobs is a boolean with top_logprobs beside it (chat), or the number of
// alternatives (completions). Throws ApiError 400 naming the field.
GenerationFields parse_generation_fields(const Json& body, bool chat);

}  // namespace fp4llm::server
