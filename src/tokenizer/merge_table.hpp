// BPE merge rules keyed by the pair of token ids they join: an open-addressing hash table,
// because the merge loop does one lookup per candidate pair and std::unordered_map's
// node-per-entry layout makes that the hot spot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fp4llm::tok {

struct MergeRule {
  int32_t rank;    // position in the merges list: lower merges first
  int32_t new_id;  // the token the pair becomes
};

class MergeTable {
 public:
  void reserve(size_t count);
  // A later rule for the same pair replaces the earlier one, as Hugging Face's HashMap does.
  void insert(int32_t left, int32_t right, MergeRule rule);
  const MergeRule* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.rule;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t key;
    MergeRule rule;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }
  size_t slot_of(uint64_t key) const {
    return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }
  void grow();

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t count_ = 0;
};

}  // namespace fp4llm::tok
