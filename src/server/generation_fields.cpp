#include "server/generation_fields.hpp"

#include <fmt/format.h>

#include "server/api_error.hpp"

namespace fp4llm::server {

namespace {

constexpr int64_t kMaxInt32 = INT32_MAX;

void parse_logprobs(const Json& body, bool chat, GenerationFields& g) {
  if (chat) {
    const bool on = opt_bool(body, "logprobs").value_or(false);
    const auto top = opt_integer(body, "top_logprobs", 0, kMaxTopLogprobs);
    if (top && !on) bad_request("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
    if (on) g.top_logprobs = int32_t(top.value_or(0));
  } else if (auto n = opt_integer(body, "logprobs", 0, kMaxTopLogprobs)) {
    g.top_logprobs = int32_t(*n);
  }
}

void parse_stream(const Json& body, GenerationFields& g) {
  g.stream = opt_bool(body, "stream").value_or(false);
  auto it = body.find("stream_options");
  if (it == body.end() || it->is_null()) return;
  if (!g.stream) bad_request("'stream_options' is only allowed when 'stream' is true", "stream_options");
  if (!it->is_object()) bad_request("'stream_options' must be an object", "stream_options");
  g.include_usage = opt_bool(*it, "include_usage").value_or(false);
}

// Fields we cannot honour are refused rather than silently ignored.
void refuse_unsupported(const Json& body) {
  auto bias = body.find("logit_bias");
  if (bias != body.end() && !bias->is_null() && !(bias->is_object() && bias->empty()))
    bad_request("'logit_bias' is not supported by this server", "logit_bias");
  auto format = body.find("response_format");
  if (format != body.end() && !format->is_null() &&
      !(format->is_object() && format->value("type", Json()) == "text"))
    bad_request("'response_format' other than {\"type\": \"text\"} is not supported by this server",
                "response_format");
}

}  // namespace

GenerationFields parse_generation_fields(const Json& body, bool chat) {
  refuse_unsupported(body);
  GenerationFields g;
  g.model = opt_string(body, "model");
  // max_completion_tokens is the newer name of max_tokens in the chat API.
  g.max_tokens = opt_integer(body, "max_tokens", INT64_MIN, INT64_MAX);
  if (chat) {
    if (auto m = opt_integer(body, "max_completion_tokens", INT64_MIN, INT64_MAX)) g.max_tokens = m;
  }
  if (g.max_tokens && *g.max_tokens < 1)
    bad_request(fmt::format("'max_tokens' must be at least 1, got {}", *g.max_tokens), "max_tokens");
  g.temperature = opt_number(body, "temperature", 0, 1e6);
  g.top_p = opt_number(body, "top_p", 0, 1);
  if (g.top_p && *g.top_p <= 0) bad_request("'top_p' must be in (0, 1]", "top_p");
  g.min_p = opt_number(body, "min_p", 0, 1);
  g.top_k = opt_integer(body, "top_k", -1, kMaxInt32);
  g.presence_penalty = opt_number(body, "presence_penalty", -2, 2).value_or(0);
  g.frequency_penalty = opt_number(body, "frequency_penalty", -2, 2).value_or(0);
  g.repetition_penalty = opt_number(body, "repetition_penalty", 1e-6, 1e6).value_or(1);
  g.seed = opt_integer(body, "seed", INT64_MIN, INT64_MAX);
  g.stop = opt_strings(body, "stop", 16);
  auto ids = body.find("stop_token_ids");
  if (ids != body.end() && !ids->is_null()) {
    if (!ids->is_array()) bad_request("'stop_token_ids' must be an array of integers", "stop_token_ids");
    for (const auto& id : *ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > kMaxInt32)
        bad_request("'stop_token_ids' must be an array of token ids", "stop_token_ids");
      g.stop_token_ids.push_back(id.get<int32_t>());
    }
  }
  g.n = int32_t(opt_integer(body, "n", 1, kMaxChoices).value_or(1));
  g.ignore_eos = opt_bool(body, "ignore_eos").value_or(false);
  g.skip_special_tokens = opt_bool(body, "skip_special_tokens").value_or(true);
  parse_stream(body, g);
  parse_logprobs(body, chat, g);
  return g;
}

}  // namespace fp4llm::server
