// The prompt of a chat request: `messages` checked and normalised (text parts joined), rendered
// with the model's chat template (tools, add_generation_prompt and chat_template_kwargs such as
// Qwen3's enable_thinking passed through), then encoded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/json_fields.hpp"
#include "server/serving_model.hpp"

namespace fp4llm::server {

struct ChatPrompt {
  std::string text;
  std::vector<int32_t> tokens;
  bool opens_reasoning = false;  // the template ended the prompt inside <think>
};

// Throws ApiError 400 for a malformed `messages` or a template that refuses them.
ChatPrompt chat_prompt(const Json& body, const ServingModel& model);

}  // namespace fp4llm::server
