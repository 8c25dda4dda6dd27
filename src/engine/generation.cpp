#include "engine/generation.hpp"

#include <algorithm>

#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace fp4llm {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int64_t conversation_window_blocks(int64_t sliding_window, int64_t prefill_chunk, int64_t max_tokens) {
  const int64_t all = (max_tokens + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize;
  return prefill_chunk <= 0 ? all : window_ring_blocks(sliding_window, prefill_chunk, all);
}

Conversation::Conversation(Backend& backend, const Tokenizer& tokenizer, const ConversationCache& cache)
    : backend_(backend), tokenizer_(tokenizer), capacity_(cache.max_tokens), prefill_chunk_(cache.prefill_chunk),
      window_blocks_(cache.window_blocks) {
  const int64_t blocks = (capacity_ + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize;
  const int64_t window = backend.config().sliding_window;
  if (window_blocks_ > 0 && window_blocks_ < conversation_window_blocks(window, prefill_chunk_, capacity_))
    fail("a conversation's window ring needs {} blocks, the cache has {}",
         conversation_window_blocks(window, prefill_chunk_, capacity_), window_blocks_);
  for (int64_t b = 0; b < blocks; ++b) {
    block_table_.push_back(int32_t(b));
    if (window_blocks_ > 0) window_table_.push_back(int32_t(b % window_blocks_));
  }
}

size_t Conversation::reusable_prefix(const std::vector<int32_t>& prompt) const {
  size_t reuse = 0;
  while (reuse < cached_.size() && reuse + 1 < prompt.size() && cached_[reuse] == prompt[reuse]) ++reuse;
  if (window_blocks_ == 0 || reuse == 0) return reuse;
  // The ring holds the blocks after the last one written, less the ring's size.
  const int64_t last_block = (int64_t(cached_.size()) - 1) / KvCacheConfig::kBlockSize;
  const int64_t first_seen = first_window_block(backend_.config().sliding_window, int64_t(reuse));
  return first_seen > last_block - window_blocks_ ? reuse : 0;
}

int32_t Conversation::next_token(std::span<const int32_t> tokens, int64_t start, Sampler& sampler,
                                 std::span<const int32_t> prompt, std::span<const int32_t> generated) {
  // A long prompt in chunks: every one but the last only fills the cache.
  const int64_t chunk = prefill_chunk_ > 0 ? prefill_chunk_ : int64_t(tokens.size());
  while (int64_t(tokens.size()) > chunk) {
    ForwardBatch fill;
    fill.sequences.push_back({tokens.first(size_t(chunk)), start, block_table_, window_table_});
    backend_.forward_greedy(fill);
    tokens = tokens.subspan(size_t(chunk));
    start += chunk;
  }
  ForwardBatch batch;
  batch.sequences.push_back({tokens, start, block_table_, window_table_});
  if (sampler.need() == Sampler::Need::kGreedyId) return backend_.forward_greedy(batch).at(0);
  if (sampler.need() == Sampler::Need::kCandidates) {
    const float temperature = float(sampler.narrowing_temperature());
    backend_.forward_candidates(batch, std::span(&temperature, 1), candidates_);
    return sampler.sample_candidates(candidates_.ids_of(0), candidates_.logits_of(0));
  }
  backend_.forward(batch, logits_);
  return sampler.sample(logits_, prompt, generated);
}

std::vector<int32_t> Conversation::generate(const std::vector<int32_t>& prompt,
                                            const GenerationOptions& options,
                                            const std::function<void(const std::string&)>& on_text,
                                            GenerationStats& stats) {
  if (prompt.empty()) fail("the prompt is empty");
  if (int64_t(prompt.size()) >= capacity_)
    fail("the prompt has {} tokens; the model length (--max-model-len) is {}", prompt.size(), capacity_);
  stats = GenerationStats{};
  stats.prompt_tokens = int64_t(prompt.size());

  // Reuse the cached prefix; always recompute at least the last prompt token for its logits.
  const size_t reuse = reusable_prefix(prompt);
  stats.cached_tokens = int64_t(reuse);
  cached_.assign(prompt.begin(), prompt.end());

  Sampler sampler(options.sampling, 0x5eed + requests_++);
  StreamingDetokenizer detok(tokenizer_, /*skip_special_tokens=*/true);
  std::vector<int32_t> out;
  auto t0 = std::chrono::steady_clock::now();
  int32_t next = next_token(std::span(prompt).subspan(reuse), int64_t(reuse), sampler, prompt, out);
  stats.prefill_seconds = seconds_since(t0);

  std::string text;
  const int64_t limit = std::min<int64_t>(options.max_tokens, capacity_ - int64_t(prompt.size()));
  stats.finish_reason = "length";
  t0 = std::chrono::steady_clock::now();
  while (int64_t(out.size()) < limit) {
    const bool is_stop = std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end();
    if (is_stop && !options.ignore_eos) {
      stats.finish_reason = "stop";
      break;
    }
    out.push_back(next);
    std::string piece = detok.push(next);
    text += piece;
    bool hit_stop_string = false;
    for (const auto& s : options.stop_strings) {
      const size_t at = text.find(s);
      if (!s.empty() && at != std::string::npos) {
        // Emit only what precedes the stop string.
        const size_t already = text.size() - piece.size();
        piece = at > already ? text.substr(already, at - already) : "";
        hit_stop_string = true;
        break;
      }
    }
    if (!piece.empty()) on_text(piece);
    if (hit_stop_string) {
      stats.finish_reason = "stop";
      break;
    }
    if (int64_t(out.size()) < limit) {  // only tokens that went through the model are cached
      cached_.push_back(next);
      next = next_token(std::span(&cached_.back(), 1), int64_t(cached_.size()) - 1, sampler, prompt, out);
    }
  }
  if (stats.finish_reason == "length") on_text(detok.flush());
  stats.decode_seconds = seconds_since(t0);
  stats.generated_tokens = int64_t(out.size());
  return out;
}

}  // namespace fp4llm
