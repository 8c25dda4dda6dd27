#include "server/engine_requests.hpp"

#include <fmt/format.h>

#include "server/api_error.hpp"
#include "util/error.hpp"

namespace fp4llm::server {

void check_model_name(const GenerationFields& fields, const ServingModel& model) {
  if (fields.model && *fields.model != model.name)
    throw ApiError(404, fmt::format("The model '{}' does not exist; this server serves '{}'", *fields.model, model.name),
                   "model", "model_not_found");
}

namespace {

SamplingParams sampling(const GenerationFields& f, const ServingModel& model) {
  SamplingParams p = model.defaults;
  if (f.temperature) p.temperature = float(*f.temperature);
  if (f.top_p) p.top_p = float(*f.top_p);
  if (f.top_k) p.top_k = int32_t(*f.top_k);
  if (f.min_p) p.min_p = float(*f.min_p);
  p.presence_penalty = float(f.presence_penalty);
  p.frequency_penalty = float(f.frequency_penalty);
  p.repetition_penalty = float(f.repetition_penalty);
  try {
    p.validate();
  } catch (const Error& e) {
    bad_request(e.what());
  }
  return p;
}

// OpenAI's wording, with both lengths.
void check_length(int64_t prompt, const std::optional<int64_t>& max_tokens, int64_t max_model_len) {
  if (prompt == 0) bad_request("the prompt is empty");
  if (prompt >= max_model_len)
    bad_request(fmt::format("This model's maximum context length is {} tokens. However, your prompt has {} tokens "
                            "(and at least one token must be generated). Please reduce the length of the prompt.",
                            max_model_len, prompt));
  if (max_tokens && *max_tokens > max_model_len - prompt)
    bad_request(fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens "
                            "({} in the prompt, {} in the completion). Please reduce the length of the prompt "
                            "or completion.",
                            max_model_len, prompt + *max_tokens, prompt, *max_tokens),
                "max_tokens");
}

}  // namespace

std::vector<EngineRequest> engine_requests(const GenerationFields& f, const std::vector<int32_t>& prompt,
                                           const ServingModel& model) {
  check_length(int64_t(prompt.size()), f.max_tokens, model.max_model_len);
  EngineRequest r;
  r.prompt = prompt;
  r.sampling = sampling(f, model);
  r.max_tokens = f.max_tokens.value_or(model.max_model_len - int64_t(prompt.size()));
  // ignore_eos drops the model's end tokens only; explicit stop_token_ids still stop (vLLM).
  if (!f.ignore_eos) r.stop_ids = model.stop_ids;
  r.stop_ids.insert(r.stop_ids.end(), f.stop_token_ids.begin(), f.stop_token_ids.end());
  r.stop_strings = f.stop;
  r.skip_special_tokens = f.skip_special_tokens;
  r.top_logprobs = f.top_logprobs;
  std::vector<EngineRequest> out(static_cast<size_t>(f.n), r);
  // Choice i gets seed + i (vLLM's rule), so n > 1 with a seed still gives n different samples.
  for (int32_t i = 0; i < f.n; ++i)
    if (f.seed) out[size_t(i)].sampling.seed = uint64_t(*f.seed) + uint64_t(i);
  return out;
}

}  // namespace fp4llm::server
