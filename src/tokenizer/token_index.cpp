#include "tokenizer/token_index.hpp"

#include <algorithm>
#include <bit>
#include <functional>

namespace fp4llm::tok {

uint64_t TokenIndex::hash_of(std::string_view key) {
  return std::hash<std::string_view>{}(key) * 0x9E3779B97F4A7C15ull;  // spread the low bits
}

void TokenIndex::reserve(size_t count) {
  const size_t wanted = std::bit_ceil(std::max<size_t>(16, count * 2));  // load factor <= 1/2
  if (wanted > slots_.size()) rehash(wanted);
}

void TokenIndex::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{0, 0, kEmpty, -1});
  mask_ = capacity - 1;
  for (const Slot& s : old) {
    if (s.length == kEmpty) continue;
    size_t i = s.hash & mask_;
    while (slots_[i].length != kEmpty) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

void TokenIndex::insert(std::string_view key, int32_t id) {
  if ((count_ + 1) * 2 > slots_.size()) rehash(std::max<size_t>(16, slots_.size() * 2));
  const uint64_t h = hash_of(key);
  size_t i = h & mask_;
  for (; slots_[i].length != kEmpty; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.hash == h && std::string_view(arena_).substr(s.offset, s.length) == key) {
      slots_[i].id = id;
      return;
    }
  }
  slots_[i] = {h, uint32_t(arena_.size()), uint32_t(key.size()), id};
  arena_.append(key);
  ++count_;
}

std::optional<int32_t> TokenIndex::find(std::string_view key) const {
  if (slots_.empty()) return std::nullopt;
  const uint64_t h = hash_of(key);
  for (size_t i = h & mask_; slots_[i].length != kEmpty; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.hash == h && s.length == key.size() &&
        std::string_view(arena_).substr(s.offset, s.length) == key)
      return s.id;
  }
  return std::nullopt;
}

}  // namespace fp4llm::tok
