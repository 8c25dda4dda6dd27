// The query tiles of a prefill step's flash attention (flash_prefill.hpp): each sequence's new
// tokens cut into tiles of up to 64, handed to the kernel longest first. A tile's work is its key
// range, which ends at its last token's position, so a long prompt's last tiles cost about as
// many times its first as they have keys; blocks start in grid order, and starting the longest
// first is what keeps one late long tile from setting the step's end (list scheduling).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace fp4llm::cuda {

// One query tile: `count` (<= 64) consecutive new tokens of one sequence, starting at flattened
// token index `first_token`.
struct QueryTile {
  int32_t first_token, count;
};

constexpr int64_t kQueryTileTokens = 64;

class QueryTilePlan {
 public:
  // A sequence's `tokens` new tokens at flattened index first_token, the first at start_position.
  void add_sequence(int64_t first_token, int64_t tokens, int64_t start_position) {
    for (int64_t j = 0; j < tokens; j += kQueryTileTokens) {
      const int64_t count = std::min(kQueryTileTokens, tokens - j);
      entries_.push_back({{int32_t(first_token + j), int32_t(count)}, start_position + j + count});
    }
  }

  // The tiles by decreasing key count (the keys of a tile's last token, before any sliding
  // window); equal ones in the order they were added.
  std::vector<QueryTile> longest_first() const {
    std::vector<Entry> sorted = entries_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) { return a.keys > b.keys; });
    std::vector<QueryTile> tiles;
    tiles.reserve(sorted.size());
    for (const Entry& e : sorted) tiles.push_back(e.tile);
    return tiles;
  }

 private:
  struct Entry {
    QueryTile tile;
    int64_t keys;
  };
  std::vector<Entry> entries_;
};

}  // namespace fp4llm::cuda
