// What a client hands the serving engine (one sequence to generate) and what it gets back, piece
// by piece. Plain data: the HTTP layer fills a request, the engine thread produces the outputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampler.hpp"

namespace fp4llm {

struct EngineRequest {
  std::vector<int32_t> prompt;  // token ids, already rendered and encoded
  SamplingParams sampling;
  int64_t max_tokens = 16;      // generated tokens at most (the stop token included)
  bool ignore_eos = false;
  std::vector<int32_t> stop_ids;         // end generation; the id counts as generated, no text
  std::vector<std::string> stop_strings;  // end generation; the string is not returned
  bool skip_special_tokens = true;
  int32_t top_logprobs = -1;  // -1: no logprobs; 0..20: the sampled token's and this many others
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
};

// One generated token with its log-probability under the model's distribution (raw logits,
// before penalties and temperature, as vLLM reports by default) and the most likely alternatives.
struct GeneratedToken {
  int32_t id = 0;
  float logprob = 0;
  std::vector<TokenLogprob> top;
};

// What one engine step produced for a request: text that can no longer change (held back while
// it could still be part of a stop string or of an unfinished UTF-8 character), the tokens, and
// when the request ended, why.
struct RequestOutput {
  int32_t index = 0;  // which of the requests submitted together
  std::string text;
  std::vector<GeneratedToken> tokens;  // logprobs filled only when the request asked for them
  std::optional<std::string> finish_reason;  // "stop", "length", "abort" or "error"
  std::string error;                         // with finish_reason "error"
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};

}  // namespace fp4llm
