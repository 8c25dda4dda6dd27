#include "engine/scheduler.hpp"

#include <algorithm>
#include <span>

#include "util/error.hpp"

namespace fp4llm {

namespace {
constexpr int64_t kBlock = KvCacheConfig::kBlockSize;

// Full block b of a sequence as the block caches know it besides its own hash: its parent's hash
// and its tokens. The blocks before b must be hashed (in s.block_hashes).
struct BlockKey {
  uint64_t parent;
  std::span<const int32_t> tokens;
};
BlockKey block_key(const Sequence& s, int64_t b) {
  return {b == 0 ? kNoParentHash : s.block_hashes[size_t(b - 1)],
          std::span(s.tokens()).subspan(size_t(b * kBlock), size_t(kBlock))};
}
}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks, BlockManager* window_blocks)
    : config_(config), blocks_(blocks), window_blocks_(window_blocks) {
  if (config_.max_num_seqs < 1) fail("--max-num-seqs must be >= 1, got {}", config_.max_num_seqs);
  if (config_.max_num_batched_tokens < 1)
    fail("--max-num-batched-tokens must be >= 1, got {}", config_.max_num_batched_tokens);
  if (window_blocks_ && config_.sliding_window < 1)
    fail("a window pool needs the model's sliding window, got {}", config_.sliding_window);
}

void Scheduler::add(std::unique_ptr<Sequence> sequence) { waiting_.push_back(std::move(sequence)); }

std::vector<Sequence*> Scheduler::all() {
  std::vector<Sequence*> out;
  for (auto& s : running_) out.push_back(s.get());
  for (auto& s : waiting_) out.push_back(s.get());
  return out;
}

// Blocks for positions up to num_computed + num_tokens, in both pools; all or nothing.
bool Scheduler::allocate(Sequence& s, int64_t num_tokens) {
  const int64_t blocks = (s.num_computed + num_tokens + kBlock - 1) / kBlock;
  const int64_t need = blocks - int64_t(s.block_table.size());
  if (need > blocks_.num_free()) return false;
  if (window_blocks_) {
    release_out_of_window(s);
    if (blocks - int64_t(s.window_table.size()) > window_blocks_->num_free()) return false;
    while (int64_t(s.window_table.size()) < blocks) s.window_table.push_back(*window_blocks_->allocate());
  }
  for (int64_t i = 0; i < need; ++i) s.block_table.push_back(*blocks_.allocate());
  return true;
}

// Window blocks before the one holding the first position the next token sees are never read
// again (positions only grow until the sequence is preempted, which frees everything).
void Scheduler::release_out_of_window(Sequence& s) {
  const int64_t first = first_window_block(config_.sliding_window, s.num_computed);
  for (; s.window_held_from < std::min<int64_t>(first, int64_t(s.window_table.size())); ++s.window_held_from)
    window_blocks_->release(s.window_table[size_t(s.window_held_from)]);
}

void Scheduler::free_blocks(Sequence& s) {
  // Last blocks first: they reach the front of the free queue first and are reused before the
  // shared prefix blocks, which are the most likely to be asked for again.
  for (auto it = s.block_table.rbegin(); it != s.block_table.rend(); ++it) blocks_.release(*it);
  for (int64_t b = int64_t(s.window_table.size()) - 1; b >= s.window_held_from; --b)
    window_blocks_->release(s.window_table[size_t(b)]);
  s.block_table.clear();
  s.window_table.clear();
  s.window_held_from = 0;
  s.block_hashes.clear();
  s.num_computed = 0;
}

// Reuses cached full blocks of the sequence's tokens; returns how many tokens they hold. The
// last token is never taken from the cache: the step must compute it to get the logits of the
// next token.
int64_t Scheduler::admit_cached_prefix(Sequence& s) {
  if (!config_.enable_prefix_caching) return 0;
  const int64_t full = (int64_t(s.tokens().size()) - 1) / kBlock;
  for (int64_t b = 0; b < full; ++b) {
    const BlockKey key = block_key(s, b);
    const uint64_t h = block_hash(key.parent, key.tokens);
    const auto block = blocks_.acquire_cached(h, key.parent, key.tokens);
    if (!block) break;
    s.block_table.push_back(*block);
    s.block_hashes.push_back(h);
  }
  if (window_blocks_) {
    const int64_t usable = cached_window_prefix(s, int64_t(s.block_table.size()));
    while (int64_t(s.block_table.size()) > usable) {
      blocks_.release(s.block_table.back());
      s.block_table.pop_back();
      s.block_hashes.pop_back();
    }
    acquire_cached_window(s, usable);
  }
  s.num_computed = int64_t(s.block_table.size()) * kBlock;
  return s.num_computed;
}

// The longest prefix of at most `full_blocks` blocks (hashed in s.block_hashes) whose last window
// is in the window pool's cache: the blocks the first computed token would see.
int64_t Scheduler::cached_window_prefix(const Sequence& s, int64_t full_blocks) const {
  const auto cached = [&](int64_t b) {
    const BlockKey key = block_key(s, b);
    return window_blocks_->find_cached(s.block_hashes[size_t(b)], key.parent, key.tokens).has_value();
  };
  for (int64_t n = full_blocks; n > 0; --n) {
    const int64_t first = first_window_block(config_.sliding_window, n * kBlock);
    bool all = true;
    for (int64_t b = n - 1; all && b >= first; --b) all = cached(b);
    if (all) return n;
  }
  return 0;
}

// Takes the window blocks of a prefix of `prefix_blocks` blocks (cached_window_prefix); the
// entries before its window name its first window block.
void Scheduler::acquire_cached_window(Sequence& s, int64_t prefix_blocks) {
  if (prefix_blocks == 0) return;
  const int64_t first = first_window_block(config_.sliding_window, prefix_blocks * kBlock);
  if (first == prefix_blocks) {  // a window of one token sees no block of the prefix
    s.window_table.assign(size_t(prefix_blocks), 0);
    s.window_held_from = prefix_blocks;
    return;
  }
  s.window_table.assign(size_t(prefix_blocks), -1);
  for (int64_t b = first; b < prefix_blocks; ++b) {
    const BlockKey key = block_key(s, b);
    const auto block = window_blocks_->acquire_cached(s.block_hashes[size_t(b)], key.parent, key.tokens);
    if (!block) fail("internal: window block {} of a cached prefix vanished", b);
    s.window_table[size_t(b)] = *block;
  }
  std::fill_n(s.window_table.begin(), first, s.window_table[size_t(first)]);
  s.window_held_from = first;
}

void Scheduler::preempt_last() {
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  free_blocks(*victim);
  waiting_.push_front(std::move(victim));
  ++counters_.preemptions;
}

std::vector<ScheduledChunk> Scheduler::schedule() {
  std::vector<ScheduledChunk> out;
  int64_t budget = config_.max_num_batched_tokens;
  bool preempted = false;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence& s = *running_[i];
    const int64_t n = std::min(s.num_uncomputed(), budget);
    bool self_preempted = false;
    while (!allocate(s, n)) {
      const bool last = running_.back().get() == &s;
      preempt_last();
      preempted = true;
      if (last) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;
    out.push_back({&s, n});
    budget -= n;
    ++i;
  }
  // New sequences join only when nobody had to give up blocks this step (vLLM's rule): admitting
  // while preempting would just trade one sequence for another.
  while (!preempted && !waiting_.empty() && budget > 0 && int64_t(running_.size()) < config_.max_num_seqs) {
    Sequence& s = *waiting_.front();
    const int64_t hits = admit_cached_prefix(s);
    const int64_t n = std::min(s.num_uncomputed(), budget);
    if (!allocate(s, n)) {
      free_blocks(s);  // gives the prefix blocks back; they stay cached
      break;
    }
    // Counted once per admission (a sequence that had to wait is looked up again next step).
    counters_.prefix_queries += int64_t(s.tokens().size());
    counters_.prefix_hits += hits;
    if (!s.cached_prompt_tokens) s.cached_prompt_tokens = std::min(hits, s.prompt_len());
    out.push_back({&s, n});
    budget -= n;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return out;
}

void Scheduler::mark_computed(const ScheduledChunk& chunk) {
  Sequence& s = *chunk.sequence;
  s.num_computed += chunk.num_tokens;
  if (!config_.enable_prefix_caching) {
    if (window_blocks_) release_out_of_window(s);  // now, not at its next step: others may need them
    return;
  }
  for (int64_t b = int64_t(s.block_hashes.size()); (b + 1) * kBlock <= s.num_computed; ++b) {
    const BlockKey key = block_key(s, b);
    const uint64_t h = block_hash(key.parent, key.tokens);
    blocks_.register_full(s.block_table[size_t(b)], h, key.parent, key.tokens);
    // A block that fills is one the step wrote, so the sequence still holds its window copy.
    if (window_blocks_) window_blocks_->register_full(s.window_table[size_t(b)], h, key.parent, key.tokens);
    s.block_hashes.push_back(h);
  }
  if (window_blocks_) release_out_of_window(s);
}

void Scheduler::remove_if(const std::function<bool(Sequence&)>& drop) {
  const auto gone = [&](std::unique_ptr<Sequence>& s) {
    if (!s->finished() && !drop(*s)) return false;
    free_blocks(*s);
    return true;
  };
  std::erase_if(running_, gone);
  std::erase_if(waiting_, gone);
}

}  // namespace fp4llm
