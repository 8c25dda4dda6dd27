// Log-probabilities for the OpenAI `logprobs` / `top_logprobs` fields: log-softmax of one
// position's raw logits, the chosen token's value and the most likely alternatives.
#pragma once

#include <cstdint>
#include <span>

#include "engine/engine_request.hpp"

namespace fp4llm {

// `logits` are the unmodified logits of one position; `top_n` alternatives (0..20) are listed
// most likely first.
GeneratedToken token_logprobs(std::span<const float> logits, int32_t chosen, int32_t top_n);

}  // namespace fp4llm
