// QueryTilePlan: the flash kernel's tiles cover every new token once, in tiles of at most 64 of
// one sequence, handed out by decreasing key count (the expected orders are worked out by hand).
#include "backend/cuda/query_tiles.hpp"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace fp4llm::cuda {
namespace {

using Tiles = std::vector<std::pair<int32_t, int32_t>>;  // (first_token, count)

Tiles tiles_of(const QueryTilePlan& plan) {
  Tiles out;
  for (const QueryTile& t : plan.longest_first()) out.emplace_back(t.first_token, t.count);
  return out;
}

TEST(QueryTilePlan, OnePromptGoesLastTileFirst) {
  QueryTilePlan plan;
  plan.add_sequence(0, 200, 0);  // tiles of 64, 64, 64, 8 tokens; keys 64, 128, 192, 200
  EXPECT_EQ(tiles_of(plan), (Tiles{{192, 8}, {128, 64}, {64, 64}, {0, 64}}));
}

TEST(QueryTilePlan, SequencesOrderByTheirKeysNotTheirPlace) {
  QueryTilePlan plan;
  plan.add_sequence(0, 100, 0);   // keys 64 and 100
  plan.add_sequence(100, 10, 500);  // a continued prompt: keys 510
  plan.add_sequence(110, 64, 36);   // keys 100, the same as the first sequence's second tile
  EXPECT_EQ(tiles_of(plan), (Tiles{{100, 10}, {64, 36}, {110, 64}, {0, 64}}));
}

TEST(QueryTilePlan, EmptyStepHasNoTiles) {
  QueryTilePlan plan;
  plan.add_sequence(0, 0, 7);
  EXPECT_TRUE(tiles_of(plan).empty());
}

}  // namespace
}  // namespace fp4llm::cuda
