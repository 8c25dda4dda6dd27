#include "backend/backend.hpp"

#include <algorithm>

#include "util/error.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm {

namespace {
void check_table(size_t seq, std::span<const int32_t> table, int64_t end, int64_t num_blocks, const char* what) {
  if (int64_t(table.size()) * KvCacheConfig::kBlockSize < end)
    fail("forward: sequence {} needs {} {} blocks for {} positions, has {}", seq,
         (end + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize, what, end, table.size());
  for (int32_t b : table)
    if (b < 0 || b >= num_blocks) fail("forward: sequence {} names {} block {} of {}", seq, what, b, num_blocks);
}

// Two visible positions in one block would overwrite each other.
void check_window_distinct(size_t seq, const SequenceChunk& chunk, int64_t window) {
  const int64_t n = window_blocks_needed(window, chunk.start_position, int64_t(chunk.tokens.size()));
  const auto last = int64_t(chunk.start_position + int64_t(chunk.tokens.size()) - 1) / KvCacheConfig::kBlockSize;
  std::vector<int32_t> seen(chunk.window_block_table.begin() + (last - n + 1), chunk.window_block_table.begin() + last + 1);
  std::sort(seen.begin(), seen.end());
  if (std::adjacent_find(seen.begin(), seen.end()) != seen.end())
    fail("forward: sequence {} names window block {} for two positions of its window", seq,
         *std::adjacent_find(seen.begin(), seen.end()));
}
}  // namespace

int64_t window_blocks_needed(int64_t sliding_window, int64_t start_position, int64_t tokens) {
  return (start_position + tokens - 1) / KvCacheConfig::kBlockSize - first_window_block(sliding_window, start_position) + 1;
}

void check_batch(const ForwardBatch& batch, const ModelConfig& config, const KvCacheConfig& cache) {
  const bool window_pool = cache.has_window_pool() && config.num_sliding_layers() > 0;
  if (cache.has_window_pool() && !window_pool)
    fail("forward: the KV cache has a window pool, but the model has no sliding-window layers");
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const SequenceChunk& seq = batch.sequences[i];
    if (seq.tokens.empty()) fail("forward: sequence {} has no new tokens", i);
    const int64_t end = seq.start_position + int64_t(seq.tokens.size());
    check_table(i, seq.block_table, end, cache.num_blocks, "cache");
    if (window_pool) {
      if (seq.window_block_table.empty())
        fail("forward: sequence {} has no window block table, which the sliding-window layers need", i);
      check_table(i, seq.window_block_table, end, cache.num_window_blocks, "window");
      check_window_distinct(i, seq, config.sliding_window);
    } else if (!seq.window_block_table.empty()) {
      fail("forward: sequence {} has a window block table, but the KV cache has no window pool", i);
    }
    for (int32_t id : seq.tokens)
      if (id < 0 || id >= config.vocab_size)
        fail("forward: token id {} is outside the vocabulary (size {})", id, config.vocab_size);
  }
}

std::vector<int32_t> Backend::forward_greedy(const ForwardBatch& batch) {
  std::vector<float> logits;
  forward(batch, logits);
  const size_t vocab = size_t(config().vocab_size);
  std::vector<int32_t> ids(logits.size() / vocab);
  for (size_t r = 0; r < ids.size(); ++r) {
    const auto row = logits.begin() + std::ptrdiff_t(r * vocab);
    ids[r] = int32_t(std::max_element(row, row + std::ptrdiff_t(vocab)) - row);
  }
  return ids;
}

void Backend::forward_candidates(const ForwardBatch& batch, std::span<const float> temperatures, CandidateRows& out) {
  std::vector<float> logits;
  forward(batch, logits);
  const size_t vocab = size_t(config().vocab_size), rows = logits.size() / vocab;
  check_temperatures(temperatures.size(), rows);
  std::vector<CandidateRows> narrowed(rows);  // rows are independent: narrowed in parallel, joined in order
  parallel_for(int64_t(rows), 2, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      append_narrowed(std::span(logits).subspan(size_t(r) * vocab, vocab), temperatures[size_t(r)], narrowed[size_t(r)]);
  });
  out.clear();
  for (const CandidateRows& row : narrowed) out.append(row.ids, row.logits);
}

}  // namespace fp4llm
