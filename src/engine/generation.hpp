// Generating text for one conversation: prefill, then one token per step until a stop
// condition, streaming text as it completes. The KV cache persists across turns, so a chat
// only computes the part of each new prompt that differs from what the cache already holds.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "engine/sampler.hpp"

namespace fp4llm {

class Tokenizer;

struct GenerationOptions {
  SamplingParams sampling;
  int64_t max_tokens = 256;
  bool ignore_eos = false;
  std::vector<int32_t> stop_ids;
  std::vector<std::string> stop_strings;
};

struct GenerationStats {
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  std::string finish_reason;  // "stop" or "length"
};

class Conversation {
 public:
  // `backend` and `tokenizer` must outlive the conversation; `max_tokens_in_cache` bounds the
  // prompt plus the generated text (the model length).
  Conversation(Backend& backend, const Tokenizer& tokenizer, int64_t max_tokens_in_cache);

  // Generates a continuation of `prompt`, calling `on_text` with each completed piece of text.
  // Returns the generated token ids (the stop token excluded) and fills `stats`.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, const GenerationOptions& options,
                                const std::function<void(const std::string&)>& on_text,
                                GenerationStats& stats);

 private:
  // One forward pass over `tokens` (from position `start`) and the token drawn from its last
  // logits, asking the backend for as little as the sampler needs: the greedy id, or the
  // candidates when there are no penalties (a GPU then sends a few bytes, not a vocabulary row).
  int32_t next_token(std::span<const int32_t> tokens, int64_t start, Sampler& sampler, std::span<const int32_t> prompt,
                     std::span<const int32_t> generated);
  std::vector<float> logits_;
  CandidateRows candidates_;
  Backend& backend_;
  const Tokenizer& tokenizer_;
  int64_t capacity_;
  std::vector<int32_t> block_table_;
  std::vector<int32_t> cached_;  // tokens whose K/V are in the cache, in order
  uint64_t requests_ = 0;
};

}  // namespace fp4llm
