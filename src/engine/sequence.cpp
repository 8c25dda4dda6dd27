#include "engine/sequence.hpp"

#include <algorithm>

namespace fp4llm {

Sequence::Sequence(uint64_t id, int32_t index, EngineRequest request, std::shared_ptr<RequestStream> stream,
                   const Tokenizer& tokenizer, int64_t max_model_len, uint64_t fallback_seed)
    : id_(id),
      index_(index),
      request_(std::move(request)),
      stream_(std::move(stream)),
      max_model_len_(max_model_len),
      tokens_(request_.prompt),
      sampler_(request_.sampling, fallback_seed),
      detok_(tokenizer, request_.skip_special_tokens),
      stop_(request_.stop_strings) {}

void Sequence::fill_index_and_usage(RequestOutput& out) const {
  out.index = index_;
  out.prompt_tokens = prompt_len();
  out.completion_tokens = num_generated();
  out.cached_tokens = cached_prompt_tokens.value_or(0);
}

RequestOutput Sequence::accept(GeneratedToken token) {
  RequestOutput out;
  const int32_t id = token.id;
  tokens_.push_back(id);
  out.tokens.push_back(std::move(token));
  const auto& stops = request_.stop_ids;
  const bool stop_id = !request_.ignore_eos && std::find(stops.begin(), stops.end(), id) != stops.end();
  if (stop_id) {
    finish_reason_ = "stop";  // the stop token itself has no text
  } else {
    out.text = stop_.push(detok_.push(id));
    if (stop_.stopped()) finish_reason_ = "stop";
  }
  if (!finish_reason_ && (num_generated() >= request_.max_tokens || int64_t(tokens_.size()) >= max_model_len_))
    finish_reason_ = "length";
  if (finish_reason_ && !stop_.stopped()) out.text += stop_.push(detok_.flush()) + stop_.flush();
  out.finish_reason = finish_reason_;
  fill_index_and_usage(out);
  return out;
}

RequestOutput Sequence::end(const std::string& reason, const std::string& error) {
  finish_reason_ = reason;
  RequestOutput out;
  out.finish_reason = reason;
  out.error = error;
  fill_index_and_usage(out);
  return out;
}

}  // namespace fp4llm
