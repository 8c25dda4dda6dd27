// Everything a request handler needs about the model being served: its name, tokenizer, chat
// template, sampling defaults and stop ids, its length limit, and the engine that runs it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/llm_engine.hpp"
#include "engine/sampler.hpp"
#include "template/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"

namespace fp4llm::server {

struct ServingModel {
  std::string name;  // --served-model-name, what `model` must say
  const Tokenizer& tokenizer;
  std::optional<ChatTemplate> chat_template;  // none: /v1/chat/completions answers 400
  SamplingParams defaults;                    // generation_config.json, as vLLM reads it
  std::vector<int32_t> stop_ids;              // eos and generation_config's eos_token_id
  int64_t max_model_len = 0;
  bool split_reasoning = false;  // the tokenizer knows <think> and </think> (Qwen3)
  LlmEngine& engine;
  int64_t created = 0;  // unix time the server started
};

}  // namespace fp4llm::server
