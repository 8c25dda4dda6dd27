// The interface both backends implement: a batch of sequences in (new token ids, their starting
// positions, the KV-cache blocks each sequence owns), logits out. Plain C++: the engine never
// sees CUDA headers.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/candidate_rows.hpp"
#include "model/model_config.hpp"

namespace fp4llm {

enum class KvCacheDtype { Fp8E4M3, Bf16 };

struct KvCacheConfig {
  KvCacheDtype dtype = KvCacheDtype::Fp8E4M3;
  int64_t num_blocks = 0;
  static constexpr int64_t kBlockSize = 16;  // tokens per paged KV block
};

// One sequence's share of a step: `tokens` are new, the first at `start_position`; positions
// before it are already in the cache. `block_table` lists the cache blocks holding positions
// [0, start_position + tokens.size()), kBlockSize tokens each.
struct SequenceChunk {
  std::span<const int32_t> tokens;
  int64_t start_position = 0;
  std::span<const int32_t> block_table;
};

struct ForwardBatch {
  std::vector<SequenceChunk> sequences;
  bool all_logits = false;  // logits of every new token, not only each sequence's last
};

// Throws Error naming the first sequence with no new tokens, too few cache blocks for its
// positions, a block id outside [0, num_blocks) or a token id outside the vocabulary. Both
// backends call it before touching memory.
void check_batch(const ForwardBatch& batch, const ModelConfig& config, int64_t num_blocks);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const ModelConfig& config() const = 0;
  // Writes [rows, vocab] float logits, rows = sequences (or all new tokens with all_logits).
  virtual void forward(const ForwardBatch& batch, std::vector<float>& logits) = 0;
  // The same step reduced to each logits row's greedy token (the lowest index among equal
  // maxima). The default runs forward() and scans on the host; the GPU picks them on the device
  // so that only the ids cross to the host.
  virtual std::vector<int32_t> forward_greedy(const ForwardBatch& batch);
  // The same step with each logits row narrowed to its sampling candidates (candidate_cutoff with
  // temperatures[row], no penalties). The default runs forward() and narrows on the host; a GPU
  // backend may narrow on the device so that only the candidates cross to the host.
  virtual void forward_candidates(const ForwardBatch& batch, std::span<const float> temperatures, CandidateRows& out);
};

}  // namespace fp4llm
