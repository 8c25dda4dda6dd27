#include "engine/block_manager.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace fp4llm {

namespace {
// splitmix64's finaliser: every input bit affects every output bit.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t block_hash(uint64_t parent_hash, std::span<const int32_t> block_tokens) {
  uint64_t h = mix(parent_hash);
  for (int32_t t : block_tokens) h = mix(h ^ uint64_t(uint32_t(t)));
  return mix(h ^ block_tokens.size());
}

BlockManager::BlockManager(int64_t num_blocks) : blocks_(static_cast<size_t>(num_blocks)) {
  if (num_blocks <= 0 || num_blocks > INT32_MAX) fail("the KV cache needs at least one block, got {}", num_blocks);
  for (int32_t b = 0; b < int32_t(num_blocks); ++b) push_free(b);
}

void BlockManager::push_free(int32_t b) {
  Block& k = blocks_[size_t(b)];
  k.prev = tail_;
  k.next = -1;
  if (tail_ >= 0) blocks_[size_t(tail_)].next = b;
  else head_ = b;
  tail_ = b;
  k.in_free_queue = true;
  ++num_free_;
}

void BlockManager::unlink_free(int32_t b) {
  Block& k = blocks_[size_t(b)];
  if (k.prev >= 0) blocks_[size_t(k.prev)].next = k.next;
  else head_ = k.next;
  if (k.next >= 0) blocks_[size_t(k.next)].prev = k.prev;
  else tail_ = k.prev;
  k.prev = k.next = -1;
  k.in_free_queue = false;
  --num_free_;
}

void BlockManager::forget_hash(int32_t b) {
  Block& k = blocks_[size_t(b)];
  if (!k.hash) return;
  auto it = cached_.find(*k.hash);
  if (it != cached_.end() && it->second == b) cached_.erase(it);
  k.hash.reset();
  k.tokens.clear();
}

std::optional<int32_t> BlockManager::allocate() {
  if (head_ < 0) return std::nullopt;
  const int32_t b = head_;
  unlink_free(b);
  forget_hash(b);  // its old contents are about to be overwritten
  blocks_[size_t(b)].refs = 1;
  return b;
}

std::optional<int32_t> BlockManager::find_cached(uint64_t hash, uint64_t parent_hash,
                                                 std::span<const int32_t> tokens) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  const Block& k = blocks_[size_t(it->second)];
  if (k.parent_hash != parent_hash || !std::equal(tokens.begin(), tokens.end(), k.tokens.begin(), k.tokens.end()))
    return std::nullopt;
  return it->second;
}

std::optional<int32_t> BlockManager::acquire_cached(uint64_t hash, uint64_t parent_hash,
                                                    std::span<const int32_t> tokens) {
  const auto found = find_cached(hash, parent_hash, tokens);
  if (!found) return std::nullopt;
  Block& k = blocks_[size_t(*found)];
  if (k.in_free_queue) unlink_free(*found);
  ++k.refs;
  return found;
}

void BlockManager::release(int32_t block) {
  Block& k = blocks_[size_t(block)];
  if (k.refs <= 0) fail("KV block {} released more often than acquired", block);
  if (--k.refs == 0) push_free(block);
}

void BlockManager::register_full(int32_t block, uint64_t hash, uint64_t parent_hash,
                                 std::span<const int32_t> tokens) {
  Block& k = blocks_[size_t(block)];
  if (k.hash || cached_.count(hash)) return;
  k.hash = hash;
  k.parent_hash = parent_hash;
  k.tokens.assign(tokens.begin(), tokens.end());
  cached_[hash] = block;
}

}  // namespace fp4llm
