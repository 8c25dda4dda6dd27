// The partition the qkv GEMV's RoPE epilogue counts heads with (backend/cuda/head_tiles.hpp):
// over all blocks, every head's tiles are counted exactly once and add up to the head, and no
// block touches more heads than the epilogue's list holds (4).
#include <gtest/gtest.h>

#include <vector>

#include "backend/cuda/head_tiles.hpp"

using fp4llm::cuda::BlockHeads;

TEST(HeadTiles, EveryHeadIsCompletedByExactlyOneBlock) {
  for (int per_block : {1, 2, 4, 8})        // kWarps / splits
    for (int head_dim : {64, 128, 256, 512})
      for (int heads : {1, 3, 7, 40, 56}) {
        const int per_head = head_dim / 16, row_tiles = heads * per_head;
        const int blocks = (row_tiles + per_block - 1) / per_block;
        std::vector<int> counted(size_t(heads), 0), completions(size_t(heads), 0);
        for (int block = 0; block < blocks; ++block) {
          const BlockHeads b(block, per_block, row_tiles, per_head);
          ASSERT_LE(b.end_head() - b.first_head(), 4) << per_block << " " << head_dim << " " << heads;
          int tiles = 0;
          for (int h = b.first_head(); h < b.end_head(); ++h) {
            ASSERT_GE(h, 0);
            ASSERT_LT(h, heads);
            ASSERT_GT(b.tiles_of(h), 0) << "a head listed with no tile of the block";
            tiles += b.tiles_of(h);
            counted[size_t(h)] += b.tiles_of(h);
            if (counted[size_t(h)] == per_head) ++completions[size_t(h)];
          }
          // The block's tiles, as the GEMV's work items assign them (tile < row_tiles).
          int own = 0;
          for (int t = block * per_block; t < block * per_block + per_block; ++t) own += t < row_tiles;
          ASSERT_EQ(tiles, own) << per_block << " " << head_dim << " " << heads << " block " << block;
        }
        for (int h = 0; h < heads; ++h) {
          EXPECT_EQ(counted[size_t(h)], per_head) << "head " << h;
          EXPECT_EQ(completions[size_t(h)], 1) << "head " << h;
        }
      }
}
