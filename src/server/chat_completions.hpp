// POST /v1/chat/completions: a chat.completion object, or chat.completion.chunk events.
#pragma once

#include "server/reply.hpp"
#include "server/serving_model.hpp"

namespace fp4llm::server {

// Throws ApiError for bad input (400, 404) and a full queue (429).
Reply chat_completions(const Json& body, const ServingModel& model);

}  // namespace fp4llm::server
