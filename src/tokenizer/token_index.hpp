// String -> id map for vocabularies: all keys in one arena and an open-addressing table of
// (hash, offset, length, id). Loading a 262k-entry vocabulary and its 515k merges does about
// 1.5 million lookups, which node-based std::unordered_map makes the slowest part of loading.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fp4llm::tok {

class TokenIndex {
 public:
  void reserve(size_t count);
  // A later insert of the same key replaces its id.
  void insert(std::string_view key, int32_t id);
  std::optional<int32_t> find(std::string_view key) const;
  size_t size() const { return count_; }

  template <typename Fn>  // Fn(std::string_view key, int32_t id)
  void for_each(Fn&& fn) const {
    for (const Slot& s : slots_)
      if (s.length != kEmpty) fn(std::string_view(arena_).substr(s.offset, s.length), s.id);
  }

 private:
  struct Slot {
    uint64_t hash;
    uint32_t offset, length;
    int32_t id;
  };
  static constexpr uint32_t kEmpty = ~uint32_t{0};
  static uint64_t hash_of(std::string_view key);
  void rehash(size_t capacity);

  std::string arena_;
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

}  // namespace fp4llm::tok
