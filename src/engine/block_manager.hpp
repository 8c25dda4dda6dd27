// The paged KV cache's bookkeeping: which of the backend's fixed-size blocks
// (KvCacheConfig::kBlockSize tokens) are in use, by how many sequences, and which full blocks
// hold a known prefix so a later request with the same tokens reuses them (prefix caching).
//
// A block whose reference count drops to zero goes to the back of the free queue but keeps its
// prefix hash: it is reused by a matching prefix until a fresh allocation takes it from the
// front (least recently freed first) and forgets the hash.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace fp4llm {

// Identifies the contents of a full block: a chained hash of the token ids of every block from
// the start of the sequence up to and including this one.
uint64_t block_hash(uint64_t parent_hash, std::span<const int32_t> block_tokens);
inline constexpr uint64_t kNoParentHash = 0x9e3779b97f4a7c15ull;

class BlockManager {
 public:
  explicit BlockManager(int64_t num_blocks);

  int64_t num_blocks() const { return int64_t(blocks_.size()); }
  int64_t num_free() const { return num_free_; }  // unreferenced, cached or not
  int64_t num_used() const { return num_blocks() - num_free_; }

  // A fresh block (reference count 1), or nothing when every block is referenced.
  std::optional<int32_t> allocate();
  // The cached block holding exactly `tokens` after the prefix hashed as `parent_hash`; the
  // block gains a reference. Tokens are compared too, so a hash collision is never a hit.
  std::optional<int32_t> acquire_cached(uint64_t hash, uint64_t parent_hash, std::span<const int32_t> tokens);
  // The same block without taking it.
  std::optional<int32_t> find_cached(uint64_t hash, uint64_t parent_hash, std::span<const int32_t> tokens) const;
  void release(int32_t block);
  // Records that `block` (referenced, now full) holds `tokens` after `parent_hash`. When another
  // block already holds that prefix it stays the cached one.
  void register_full(int32_t block, uint64_t hash, uint64_t parent_hash, std::span<const int32_t> tokens);

  int32_t ref_count(int32_t block) const { return blocks_[size_t(block)].refs; }
  int64_t num_cached() const { return int64_t(cached_.size()); }

 private:
  struct Block {
    int32_t refs = 0;
    int32_t prev = -1, next = -1;  // free-queue links
    bool in_free_queue = false;
    std::optional<uint64_t> hash;
    uint64_t parent_hash = 0;
    std::vector<int32_t> tokens;
  };
  void push_free(int32_t b);
  void unlink_free(int32_t b);
  void forget_hash(int32_t b);

  std::vector<Block> blocks_;
  int32_t head_ = -1, tail_ = -1;  // free queue, head = next to reuse
  int64_t num_free_ = 0;
  std::unordered_map<uint64_t, int32_t> cached_;  // hash -> block
};

}  // namespace fp4llm
