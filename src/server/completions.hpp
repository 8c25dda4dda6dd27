// POST /v1/completions: `prompt` as a string, a list of strings, a list of token ids or a list
// of such lists; n choices per prompt, numbered prompt * n + choice as OpenAI does.
#pragma once

#include "server/reply.hpp"
#include "server/serving_model.hpp"

namespace fp4llm::server {

inline constexpr size_t kMaxPrompts = 64;

// Throws ApiError for bad input (400, 404) and a full queue (429).
Reply completions(const Json& body, const ServingModel& model);

}  // namespace fp4llm::server
