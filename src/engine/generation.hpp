// Generating text for one conversation: prefill (in chunks), then one token per step until a
// stop condition, streaming text as it completes. The KV cache persists across turns, so a chat
// only computes the part of each new prompt that differs from what the cache already holds.
// Sliding-window layers keep their K/V in a ring of window-pool blocks (position p in block
// (p / 16) mod ring), big enough for one prefill chunk and the window before it.
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

// How a conversation uses the backend's KV cache.
struct ConversationCache {
  int64_t max_tokens = 0;     // prompt plus generated text (the model length)
  int64_t prefill_chunk = 0;  // prompt tokens per forward pass; 0: a whole prompt in one
  // The backend's window pool (KvCacheConfig::num_window_blocks), used as one ring by the
  // sliding-window layers; 0: none. At least conversation_window_blocks().
  int64_t window_blocks = 0;
};

// The ring the sliding-window layers need for prompts fed `prefill_chunk` tokens at a time: the
// most blocks one step sees (window_blocks_needed), at most the model length's blocks.
int64_t conversation_window_blocks(int64_t sliding_window, int64_t prefill_chunk, int64_t max_tokens);

class Conversation {
 public:
  // `backend` and `tokenizer` must outlive the conversation.
  Conversation(Backend& backend, const Tokenizer& tokenizer, const ConversationCache& cache);

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
  // How many tokens of `prompt` the cache still holds for every layer: their common prefix with
  // what was computed, where the ring still holds the window before its end (else none).
  size_t reusable_prefix(const std::vector<int32_t>& prompt) const;
  std::vector<float> logits_;
  CandidateRows candidates_;
  Backend& backend_;
  const Tokenizer& tokenizer_;
  int64_t capacity_, prefill_chunk_, window_blocks_;
  std::vector<int32_t> block_table_, window_table_;
  std::vector<int32_t> cached_;  // tokens whose K/V are in the cache, in order
  uint64_t requests_ = 0;
};

}  // namespace fp4llm
