// One sequence being served: its tokens (prompt, then generated), how many of them the KV cache
// already holds, the cache blocks it owns, and the per-request sampling, detokenizing and
// stop-condition state. The scheduler moves it between waiting and running; the engine feeds it
// sampled tokens.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine_request.hpp"
#include "engine/request_stream.hpp"
#include "engine/sampler.hpp"
#include "engine/stop_string_matcher.hpp"
#include "tokenizer/tokenizer.hpp"

namespace fp4llm {

using Clock = std::chrono::steady_clock;

class Sequence {
 public:
  Sequence(uint64_t id, int32_t index, EngineRequest request, std::shared_ptr<RequestStream> stream,
           const Tokenizer& tokenizer, int64_t max_model_len, uint64_t fallback_seed);

  uint64_t id() const { return id_; }
  const EngineRequest& request() const { return request_; }
  RequestStream& stream() { return *stream_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t prompt_len() const { return int64_t(request_.prompt.size()); }
  int64_t num_generated() const { return int64_t(tokens_.size()) - prompt_len(); }
  // Tokens still to run through the model before the next token can be sampled.
  int64_t num_uncomputed() const { return int64_t(tokens_.size()) - num_computed; }

  // Appends a sampled token, decides whether the sequence is finished, and returns the output
  // for the client (empty text while held back). Sets finish_reason when finished.
  RequestOutput accept(GeneratedToken token);
  // The final output of a sequence ended from outside (client gone, engine error).
  RequestOutput end(const std::string& reason, const std::string& error = {});
  bool finished() const { return finish_reason_.has_value(); }

  Sampler& sampler() { return sampler_; }

  // Scheduling state, owned by the scheduler.
  int64_t num_computed = 0;         // tokens whose K/V are in the cache
  std::vector<int32_t> block_table;  // cache blocks for positions [0, 16 * size)
  // With a window pool: as long as block_table; entries before window_held_from were given back
  // (they still name valid blocks, which the backends never read: SequenceChunk).
  std::vector<int32_t> window_table;
  int64_t window_held_from = 0;
  std::vector<uint64_t> block_hashes;  // prefix hashes of the first full blocks, in order
  std::optional<int64_t> cached_prompt_tokens;  // prefix-cache hit at first admission

  // Timing, for the metrics.
  Clock::time_point arrival = Clock::now();
  std::optional<Clock::time_point> first_token, last_token;

 private:
  void fill_index_and_usage(RequestOutput& out) const;
  uint64_t id_;
  int32_t index_;  // among the requests sharing the stream
  EngineRequest request_;
  std::shared_ptr<RequestStream> stream_;
  int64_t max_model_len_;
  std::vector<int32_t> tokens_;
  Sampler sampler_;
  StreamingDetokenizer detok_;
  StopStringMatcher stop_;
  std::optional<std::string> finish_reason_;
};

}  // namespace fp4llm
