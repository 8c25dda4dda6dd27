// The GPU kernels' tile layout (backend/cuda/nvfp4_tiles) holds exactly the weights it was made
// from: every element read back through the layout equals the source's dequantized value, for
// shapes that need row and column padding and for fused parts with different global scales.
#include <gtest/gtest.h>

#include "backend/cuda/nvfp4_tiles.hpp"
#include "random_nvfp4.hpp"
#include "util/error.hpp"

using namespace fp4llm;

namespace {

void expect_same(const cuda::Nvfp4Tiles& t, const QuantizedLinear& q, int64_t first_row) {
  std::vector<float> row(static_cast<size_t>(q.in_features));
  for (int64_t r = 0; r < q.out_features; ++r) {
    q.dequantize_row(r, row.data());
    for (int64_t c = 0; c < q.in_features; ++c)
      ASSERT_EQ(cuda::nvfp4_tiles_value(t, first_row + r, c), row[size_t(c)]) << "row " << r << " col " << c;
  }
}

}  // namespace

TEST(Nvfp4Tiles, SingleMatrixOfOddShapes) {
  std::mt19937 rng(1);
  for (auto [out, in] : std::vector<std::pair<int64_t, int64_t>>{{1, 16}, {16, 64}, {17, 80}, {40, 208}, {33, 1040}}) {
    const QuantizedLinear q = test_support::random_nvfp4(out, in, rng);
    const QuantizedLinear* parts[] = {&q};
    const cuda::Nvfp4Tiles t = cuda::make_nvfp4_tiles(parts);
    EXPECT_EQ(t.row_tiles, (out + 15) / 16);
    EXPECT_EQ(t.k_chunks, (in + 63) / 64);
    expect_same(t, q, 0);
    // Padding is zero: code 0 with scale 0.
    for (int64_t c = in; c < t.k_chunks * 64; ++c) EXPECT_EQ(cuda::nvfp4_tiles_value(t, 0, c), 0.0f);
    for (int64_t r = out; r < t.row_tiles * 16; ++r) EXPECT_EQ(cuda::nvfp4_tiles_value(t, r, 0), 0.0f);
  }
}

TEST(Nvfp4Tiles, FusedPartsKeepTheirGlobalScales) {
  std::mt19937 rng(2);
  const QuantizedLinear a = test_support::random_nvfp4(48, 144, rng), b = test_support::random_nvfp4(16, 144, rng),
                        c = test_support::random_nvfp4(32, 144, rng);
  const QuantizedLinear* parts[] = {&a, &b, &c};
  const cuda::Nvfp4Tiles t = cuda::make_nvfp4_tiles(parts);
  EXPECT_EQ(t.out_features, 96);
  expect_same(t, a, 0);
  expect_same(t, b, 48);
  expect_same(t, c, 64);
}

TEST(Nvfp4Tiles, RejectsPartsThatWouldShareATile) {
  std::mt19937 rng(3);
  const QuantizedLinear a = test_support::random_nvfp4(24, 64, rng), b = test_support::random_nvfp4(16, 64, rng);
  const QuantizedLinear* parts[] = {&a, &b};
  EXPECT_THROW(cuda::make_nvfp4_tiles(parts), Error);
}
