// l2_share (backend/cuda/l2_ahead.hpp): the blocks of a decode GEMV split a weight's slots among
// themselves for the bulk L2 prefetch, which needs each share's scales (2 bytes a slot) to start
// and end on 16-byte boundaries. Checked against a plain walk over every slot: each is requested
// by exactly one block, the shares are whole 32-slot chunks, in block order.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cuda/l2_ahead.hpp"

namespace {

using fp4llm::cuda::L2Share;
using fp4llm::cuda::l2_share;

void expect_exact_cover(uint32_t slots, uint32_t blocks) {
  std::vector<int> owners(slots, 0);
  uint32_t next = 0;
  for (uint32_t b = 0; b < blocks; ++b) {
    const L2Share s = l2_share(slots, blocks, b);
    ASSERT_EQ(s.first % 32, 0u) << slots << " slots, block " << b;
    ASSERT_EQ(s.count % 32, 0u) << slots << " slots, block " << b;
    ASSERT_EQ((s.first * 2) % 16, 0u);  // the scales' share starts on a 16-byte boundary
    if (s.count > 0) {
      ASSERT_EQ(s.first, next) << "shares in block order, " << slots << " slots, block " << b;
    }
    ASSERT_LE(uint64_t(s.first) + s.count, slots) << slots << " slots, block " << b;
    for (uint32_t i = s.first; i < s.first + s.count; ++i) ++owners[i];
    next = s.first + s.count;
  }
  for (uint32_t i = 0; i < slots; ++i) ASSERT_EQ(owners[i], 1) << "slot " << i << " of " << slots << ", " << blocks << " blocks";
}

TEST(L2Share, EverySlotRequestedOnceInWholeChunks) {
  // Qwen3-30B-A3B's qkv (320 tiles x 32 chunks) over the experts' down grid at batch 1 (16 x 8
  // blocks) and with FP4LLM_EXPERTS_SPLITS=wave (64 x 8); more blocks than chunks; one block.
  for (uint32_t blocks : {1u, 7u, 128u, 512u, 5000u}) {
    expect_exact_cover(320 * 32 * 32, blocks);
    expect_exact_cover(32, blocks);
    expect_exact_cover(96 * 32, blocks);
  }
}

TEST(L2Share, BlocksPastTheLastChunkGetNothing) {
  const L2Share s = l2_share(3 * 32, 8, 5);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(l2_share(3 * 32, 8, 2).count, 32u);
}

// OwnWeightsToL2Scope (FP4LLM_L2_AHEAD=o_proj, qkv_own) holds for its part and no longer.
TEST(L2Share, OwnWeightsScopeHoldsForItsPartOnly) {
  using fp4llm::cuda::OwnWeightsToL2Scope;
  using fp4llm::cuda::own_weights_to_l2;
  ASSERT_FALSE(own_weights_to_l2());
  {
    const OwnWeightsToL2Scope part(true);
    EXPECT_TRUE(own_weights_to_l2());
    {
      const OwnWeightsToL2Scope other(false);
      EXPECT_FALSE(own_weights_to_l2());
    }
    EXPECT_TRUE(own_weights_to_l2());
  }
  EXPECT_FALSE(own_weights_to_l2());
}

// FP4LLM_L2_AHEAD's parts: unset, `qkv` alone (measured faster with the deferred norm); a list
// replaces it; `none` asks for nothing.
TEST(L2Share, PartsDefaultToTheQkv) {
  using fp4llm::cuda::l2_ahead_requested;
  const char* before = std::getenv("FP4LLM_L2_AHEAD");
  const std::string saved = before ? before : "";
  unsetenv("FP4LLM_L2_AHEAD");
  EXPECT_TRUE(l2_ahead_requested("qkv"));
  EXPECT_FALSE(l2_ahead_requested("o_proj"));
  EXPECT_FALSE(l2_ahead_requested("qkv_own"));
  setenv("FP4LLM_L2_AHEAD", "none", 1);
  EXPECT_FALSE(l2_ahead_requested("qkv"));
  setenv("FP4LLM_L2_AHEAD", "o_proj,down", 1);
  EXPECT_FALSE(l2_ahead_requested("qkv"));
  EXPECT_TRUE(l2_ahead_requested("down"));
  if (before) setenv("FP4LLM_L2_AHEAD", saved.c_str(), 1);
  else unsetenv("FP4LLM_L2_AHEAD");
}

}  // namespace
