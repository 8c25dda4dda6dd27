// pipelined_gemv_shape (backend/cuda/pipelined_gemv_shape.hpp): the pipelined wgmma GEMV's block
// shape for the products of the models it serves, on the H100's 132 SMs. The expected shapes were
// worked out by hand from the weights' sizes (16-row tiles, 64-column chunks) and the rule: the
// fullest waves of one block a SM, then more rows a block, then fewer K shares.
#include <gtest/gtest.h>

#include "backend/cuda/pipelined_gemv_shape.hpp"

namespace {

using fp4llm::cuda::ClusterCapacity;
using fp4llm::cuda::pipelined_gemv_shape;

constexpr ClusterCapacity kEvery{132, 66, 33};  // every SM in clusters of 2 and of 4

void expect_shape(int64_t rows, int64_t k, int consumers, int cluster, const char* what,
                  const ClusterCapacity& capacity = kEvery) {
  const auto shape = pipelined_gemv_shape(rows / 16, k / 64, capacity, 2);
  EXPECT_EQ(shape.consumers, consumers) << what;
  EXPECT_EQ(shape.cluster, cluster) << what;
}

TEST(PipelinedGemvShape, Qwen3_8B) {
  expect_shape(6144, 4096, 3, 4, "qkv: 32 row blocks of 192 in clusters of 4 = 128 blocks");
  expect_shape(4096, 4096, 2, 4, "o_proj: 32 of 128 rows x 4 = 128 (22 of 192 x 4 = 88)");
  expect_shape(2 * 12288, 4096, 3, 1, "gate_up: 128 blocks of 192 rows");
  expect_shape(4096, 12288, 2, 4, "down_proj: as o_proj");
}

TEST(PipelinedGemvShape, Gemma3_27B) {
  expect_shape(8192, 5376, 2, 2, "qkv: 64 of 128 rows x 2 = 128 (43 of 192: 86 or 172)");
  expect_shape(5376, 4096, 3, 4, "o_proj: 28 of 192 x 4 = 112 (42 of 128: 84 or 168)");
  expect_shape(2 * 21504, 5376, 3, 1, "gate_up: 224 of 192 in two waves ties 336 of 128 in three; no split");
}

TEST(PipelinedGemvShape, SplitsKOnlyForIdleSMs) {
  // 132 row blocks of 192 rows fill one wave exactly; 140 of 192 rows (210 of 128) leave none idle.
  EXPECT_EQ(pipelined_gemv_shape(132 * 12, 4096 / 64, kEvery, 2).cluster, 1);
  EXPECT_EQ(pipelined_gemv_shape(140 * 12, 4096 / 64, kEvery, 2).cluster, 1);
}

TEST(PipelinedGemvShape, SharesKeepTwoStages) {
  // 8 chunks of K: clusters of 4 would leave 2 chunks (one stage) a block, so at most 2.
  const auto shape = pipelined_gemv_shape(16, 8, kEvery, 2);
  EXPECT_LE(shape.cluster, 2);
  EXPECT_EQ(pipelined_gemv_shape(16, 3, kEvery, 2).cluster, 1) << "fewer chunks than two stages: no split";
}

TEST(PipelinedGemvShape, CountsTheClustersThatFitAtOnce) {
  // Only 30 clusters of 4 at once (GPCs of 18 SMs hold 4, leaving 2 idle): Qwen3-8B's qkv in 32
  // clusters of 4 would take two waves (fill 128 / 264); 48 row blocks of 128 rows in clusters of
  // 2 fit one wave (96 / 132), as do 32 of 192 in clusters of 2 (64 / 132, less).
  expect_shape(6144, 4096, 2, 2, "qkv", ClusterCapacity{132, 66, 30});
  // Clusters of 2 reported as not fitting at all: those of 4 still do.
  expect_shape(6144, 4096, 3, 4, "qkv", ClusterCapacity{132, 0, 33});
}

}  // namespace
