#include "tokenizer/merge_table.hpp"

#include <algorithm>
#include <bit>

namespace fp4llm::tok {

void MergeTable::reserve(size_t count) {
  const size_t wanted = std::bit_ceil(std::max<size_t>(16, count * 2));  // load factor <= 1/2
  if (wanted <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(wanted, Slot{kEmpty, {0, 0}});
  mask_ = wanted - 1;
  shift_ = 64 - std::countr_zero(wanted);
  count_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) insert(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.rule);
}

void MergeTable::grow() { reserve(std::max<size_t>(16, count_ * 2)); }

void MergeTable::insert(int32_t left, int32_t right, MergeRule rule) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  const uint64_t key = pack(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.rule = rule;
      return;
    }
    if (s.key == kEmpty) {
      s = {key, rule};
      ++count_;
      return;
    }
  }
}

}  // namespace fp4llm::tok
