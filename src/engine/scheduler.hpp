// Continuous batching: each step takes the running sequences (a decode token each, or the next
// chunk of a prefill) and then admits waiting ones, within a token budget
// (--max-num-batched-tokens) and a cap on running sequences (--max-num-seqs). When the KV cache
// runs out of blocks the most recently admitted sequence is preempted: its blocks are freed and
// it waits at the front of the queue to be recomputed later (its tokens so far become its
// prompt; the CPU backend's prefill and decode give identical results, so nothing changes).
//
// Models with sliding-window layers may keep those layers' K/V in a second pool (the window
// pool, KvCacheConfig::num_window_blocks): a sequence then holds window blocks only from the
// first block its next tokens can see, and gives the older ones back as it advances. A prefix
// hit then needs both the full-attention blocks of the prefix and the window blocks of its last
// window; the longest prefix that has both is taken.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "engine/block_manager.hpp"
#include "engine/sequence.hpp"

namespace fp4llm {

struct SchedulerConfig {
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 2048;
  bool enable_prefix_caching = true;
  int64_t sliding_window = 0;  // the window of the layers in the window pool, when there is one
};

struct ScheduledChunk {
  Sequence* sequence = nullptr;
  int64_t num_tokens = 0;  // tokens [num_computed, num_computed + num_tokens) run this step
};

struct SchedulerCounters {
  int64_t preemptions = 0;
  int64_t prefix_queries = 0, prefix_hits = 0;  // prompt tokens looked up / found in the cache
};

class Scheduler {
 public:
  // `window_blocks`: the sliding layers' pool, or null when they share `blocks`.
  Scheduler(const SchedulerConfig& config, BlockManager& blocks, BlockManager* window_blocks = nullptr);

  void add(std::unique_ptr<Sequence> sequence);
  // The work of one step. Sequences in it have blocks for every position the step writes.
  std::vector<ScheduledChunk> schedule();
  // After a step: the chunk's tokens are in the cache; full blocks become reusable prefixes.
  void mark_computed(const ScheduledChunk& chunk);
  // Removes finished sequences, and those `drop` selects (after calling it on them), from
  // both queues, freeing their blocks.
  void remove_if(const std::function<bool(Sequence&)>& drop);

  int64_t num_running() const { return int64_t(running_.size()); }
  int64_t num_waiting() const { return int64_t(waiting_.size()); }
  bool empty() const { return running_.empty() && waiting_.empty(); }
  const SchedulerCounters& counters() const { return counters_; }
  std::vector<Sequence*> all();

 private:
  bool allocate(Sequence& s, int64_t num_tokens);
  void release_out_of_window(Sequence& s);
  int64_t admit_cached_prefix(Sequence& s);
  int64_t cached_window_prefix(const Sequence& s, int64_t full_blocks) const;
  void acquire_cached_window(Sequence& s, int64_t prefix_blocks);
  void free_blocks(Sequence& s);
  void preempt_last();

  SchedulerConfig config_;
  BlockManager& blocks_;
  BlockManager* window_blocks_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  std::deque<std::unique_ptr<Sequence>> waiting_;
  SchedulerCounters counters_;
};

}  // namespace fp4llm
