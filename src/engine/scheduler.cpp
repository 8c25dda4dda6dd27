#include "engine/scheduler.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace fp4llm {

namespace {
constexpr int64_t kBlock = KvCacheConfig::kBlockSize;
}

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks) : config_(config), blocks_(blocks) {
  if (config_.max_num_seqs < 1) fail("--max-num-seqs must be >= 1, got {}", config_.max_num_seqs);
  if (config_.max_num_batched_tokens < 1)
    fail("--max-num-batched-tokens must be >= 1, got {}", config_.max_num_batched_tokens);
}

void Scheduler::add(std::unique_ptr<Sequence> sequence) { waiting_.push_back(std::move(sequence)); }

std::vector<Sequence*> Scheduler::all() {
  std::vector<Sequence*> out;
  for (auto& s : running_) out.push_back(s.get());
  for (auto& s : waiting_) out.push_back(s.get());
  return out;
}

// Blocks for positions up to num_computed + num_tokens; all or nothing.
bool Scheduler::allocate(Sequence& s, int64_t num_tokens) {
  const int64_t need = (s.num_computed + num_tokens + kBlock - 1) / kBlock - int64_t(s.block_table.size());
  if (need > blocks_.num_free()) return false;
  for (int64_t i = 0; i < need; ++i) s.block_table.push_back(*blocks_.allocate());
  return true;
}

void Scheduler::free_blocks(Sequence& s) {
  // Last blocks first: they reach the front of the free queue first and are reused before the
  // shared prefix blocks, which are the most likely to be asked for again.
  for (auto it = s.block_table.rbegin(); it != s.block_table.rend(); ++it) blocks_.release(*it);
  s.block_table.clear();
  s.block_hashes.clear();
  s.num_computed = 0;
}

// Reuses cached full blocks of the sequence's tokens; returns how many tokens they hold. The
// last token is never taken from the cache: the step must compute it to get the logits of the
// next token.
int64_t Scheduler::admit_cached_prefix(Sequence& s) {
  if (!config_.enable_prefix_caching) return 0;
  const auto& tokens = s.tokens();
  const int64_t full = (int64_t(tokens.size()) - 1) / kBlock;
  uint64_t parent = kNoParentHash;
  for (int64_t b = 0; b < full; ++b) {
    const auto block_tokens = std::span(tokens).subspan(size_t(b * kBlock), size_t(kBlock));
    const uint64_t h = block_hash(parent, block_tokens);
    const auto block = blocks_.acquire_cached(h, parent, block_tokens);
    if (!block) break;
    s.block_table.push_back(*block);
    s.block_hashes.push_back(h);
    parent = h;
  }
  s.num_computed = int64_t(s.block_table.size()) * kBlock;
  return s.num_computed;
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
  if (!config_.enable_prefix_caching) return;
  const auto& tokens = s.tokens();
  for (int64_t b = int64_t(s.block_hashes.size()); (b + 1) * kBlock <= s.num_computed; ++b) {
    const uint64_t parent = b == 0 ? kNoParentHash : s.block_hashes[size_t(b - 1)];
    const auto block_tokens = std::span(tokens).subspan(size_t(b * kBlock), size_t(kBlock));
    const uint64_t h = block_hash(parent, block_tokens);
    blocks_.register_full(s.block_table[size_t(b)], h, parent, block_tokens);
    s.block_hashes.push_back(h);
  }
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
