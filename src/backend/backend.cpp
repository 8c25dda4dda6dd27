#include "backend/backend.hpp"

#include <algorithm>

#include "util/error.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm {

void check_batch(const ForwardBatch& batch, const ModelConfig& config, int64_t num_blocks) {
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const SequenceChunk& seq = batch.sequences[i];
    if (seq.tokens.empty()) fail("forward: sequence {} has no new tokens", i);
    const int64_t end = seq.start_position + int64_t(seq.tokens.size());
    if (int64_t(seq.block_table.size()) * KvCacheConfig::kBlockSize < end)
      fail("forward: sequence {} needs {} cache blocks for {} positions, has {}", i,
           (end + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize, end, seq.block_table.size());
    for (int32_t b : seq.block_table)
      if (b < 0 || b >= num_blocks) fail("forward: sequence {} names cache block {} of {}", i, b, num_blocks);
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
