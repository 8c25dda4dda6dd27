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
  // Blocks of the sliding-window layers' own pool, which holds only each sequence's window (and
  // the chunk being computed); 0: those layers keep every position in the main pool, like the
  // full-attention layers. See SequenceChunk::window_block_table.
  int64_t num_window_blocks = 0;
  static constexpr int64_t kBlockSize = 16;  // tokens per paged KV block
  bool has_window_pool() const { return num_window_blocks > 0; }
};

// One sequence's share of a step: `tokens` are new, the first at `start_position`; positions
// before it are already in the cache. `block_table` lists the cache blocks holding positions
// [0, start_position + tokens.size()), kBlockSize tokens each.
//
// With a window pool (KvCacheConfig::num_window_blocks > 0) the sliding-window layers read and
// write through `window_block_table` instead: as long as block_table, indexed the same way, but
// only the entries of the blocks that some new token can see (positions from start_position -
// sliding_window + 1 on) must name distinct blocks holding those positions. Earlier entries may
// name any block of the window pool: the kernels never read a key outside a query's window, and
// a masked key read with a tile of keys only needs finite data, which every block holds (the
// pool starts zeroed). So a sequence can hold its window in a ring of blocks that it reuses.
struct SequenceChunk {
  std::span<const int32_t> tokens;
  int64_t start_position = 0;
  std::span<const int32_t> block_table;
  std::span<const int32_t> window_block_table;
};

struct ForwardBatch {
  std::vector<SequenceChunk> sequences;
  bool all_logits = false;  // logits of every new token, not only each sequence's last
};

// Throws Error naming the first sequence with no new tokens, too few cache blocks for its
// positions (in either table), a block id outside its pool, a window table where the cache has
// no window pool or none where it has one, or a token id outside the vocabulary. Both backends
// call it before touching memory.
void check_batch(const ForwardBatch& batch, const ModelConfig& config, const KvCacheConfig& cache);

// The number of blocks of window_block_table a chunk of `tokens` new tokens from
// `start_position` needs distinct: from the block of the first position any of them sees to the
// block of the last.
int64_t window_blocks_needed(int64_t sliding_window, int64_t start_position, int64_t tokens);

// The block holding the first key a query at `position` sees through its window.
inline int64_t first_window_block(int64_t sliding_window, int64_t position) {
  return (position - sliding_window + 1 > 0 ? position - sliding_window + 1 : 0) / KvCacheConfig::kBlockSize;
}

// The blocks of a ring that serves a sequence of `blocks` blocks fed at most `chunk` new tokens
// per step: window_blocks_needed's largest value (the window's W - 1 earlier keys and the chunk,
// plus one block where they start mid-block), never more than the sequence's blocks.
inline int64_t window_ring_blocks(int64_t sliding_window, int64_t chunk, int64_t blocks) {
  const int64_t ring = (sliding_window - 1 + chunk + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize + 1;
  return ring < blocks ? ring : blocks;
}

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
