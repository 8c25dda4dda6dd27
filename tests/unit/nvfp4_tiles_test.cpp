// The GPU kernels' tile layout (backend/cuda/nvfp4_tiles) holds exactly the weights it was made
// from: every element read back through the layout equals the source's dequantized value, for
// shapes that need row and column padding, for fused parts with different global scales and for
// the gated gate/up interleave; and the code placement decodes with the kernels' bit operations.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "backend/cuda/e2m1_pairs.hpp"
#include "backend/cuda/nvfp4_tiles.hpp"
#include "formats/number_formats.hpp"
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

// A part starting at row 8 of a tile, long enough to be placed by several threads: each unit of
// work must fill whole destination tiles (two threads writing one tile's bytes would race).
TEST(Nvfp4Tiles, PartStartingMidTileIsPlacedWhole) {
  std::mt19937 rng(5);
  const QuantizedLinear a = test_support::random_nvfp4(8, 64, rng), b = test_support::random_nvfp4(4104, 64, rng);
  const QuantizedLinear* parts[] = {&a, &b};
  for (int repeat = 0; repeat < 3; ++repeat) {
    const cuda::Nvfp4Tiles t = cuda::make_nvfp4_tiles(parts);
    expect_same(t, a, 0);
    expect_same(t, b, 8);
  }
}

TEST(Nvfp4Tiles, RejectsPartsThatWouldShareATileHalf) {
  std::mt19937 rng(3);
  const QuantizedLinear a = test_support::random_nvfp4(20, 64, rng), b = test_support::random_nvfp4(16, 64, rng);
  const QuantizedLinear* parts[] = {&a, &b};
  EXPECT_THROW(cuda::make_nvfp4_tiles(parts), Error);
}

TEST(Nvfp4Tiles, GatedLayoutInterleavesGateAndUpByEightRows) {
  std::mt19937 rng(4);
  const QuantizedLinear gate = test_support::random_nvfp4(24, 80, rng), up = test_support::random_nvfp4(24, 80, rng);
  const cuda::Nvfp4Tiles t = cuda::make_gated_nvfp4_tiles(gate, up);
  EXPECT_TRUE(t.gated);
  EXPECT_EQ(t.out_features, 48);
  EXPECT_EQ(t.row_tiles, 3);
  std::vector<float> g(80), u(80);
  for (int64_t f = 0; f < 24; ++f) {
    gate.dequantize_row(f, g.data());
    up.dequantize_row(f, u.data());
    for (int64_t c = 0; c < 80; ++c) {
      ASSERT_EQ(cuda::nvfp4_tiles_value(t, f / 8 * 16 + f % 8, c), g[size_t(c)]) << "gate row " << f << " col " << c;
      ASSERT_EQ(cuda::nvfp4_tiles_value(t, f / 8 * 16 + 8 + f % 8, c), u[size_t(c)]) << "up row " << f << " col " << c;
    }
  }
  const QuantizedLinear odd = test_support::random_nvfp4(20, 80, rng);
  EXPECT_THROW(cuda::make_gated_nvfp4_tiles(odd, odd), Error);
  EXPECT_THROW(cuda::make_gated_nvfp4_tiles(gate, odd), Error);
}

// The kernels turn register slot j of each 32-bit word into a BF16 pair with e2m1_pair<j>
// (e2m1_pairs.hpp, the same function on the host) and expect each half to be the E2M1 value
// times 2^-126. For every code in every place the layout uses: the packer's bit places
// (code_bit) fill each word's 32 bits exactly once, and a word holding only that code decodes to
// it in its half and to zero in every other half of every slot.
template <int J>
uint32_t pair_of(uint32_t w) {
  return cuda::e2m1_pair<J>(w);
}
uint32_t pair(int slot, uint32_t w) {
  switch (slot) {
    case 0: return pair_of<0>(w);
    case 1: return pair_of<1>(w);
    case 2: return pair_of<2>(w);
    default: return pair_of<3>(w);
  }
}

TEST(Nvfp4Tiles, CodePlacesDecodeWithTheKernelsBitOperations) {
  std::set<std::pair<int, int>> seen;  // (word, bit)
  for (int upper = 0; upper < 2; ++upper)
    for (int v = 0; v < 16; ++v) {
      const cuda::CodePlace at = cuda::code_place(upper, v);
      EXPECT_EQ(at.word, v / 4) << "value " << v << " must sit in the word of MMA " << v / 4;
      for (int c = 0; c < 4; ++c) {
        const int bit = cuda::code_bit(at.slot, at.high, c);
        ASSERT_GE(bit, 0);
        ASSERT_LT(bit, 32);
        EXPECT_TRUE(seen.insert({at.word, bit}).second) << "two code bits share bit " << bit << " of word " << at.word;
      }
      for (uint32_t code = 0; code < 16; ++code) {
        uint32_t w = 0;
        for (int c = 0; c < 4; ++c) w |= ((code >> c) & 1u) << cuda::code_bit(at.slot, at.high, c);
        for (int slot = 0; slot < 4; ++slot) {
          const uint32_t p = pair(slot, w);
          for (int high = 0; high < 2; ++high) {
            const uint32_t half = high ? p >> 16 : p & 0xFFFF;
            if (slot != at.slot || high != at.high) {
              EXPECT_EQ(half, 0u) << "code of value " << v << " leaks into slot " << slot << " half " << high;
              continue;
            }
            const float got = std::ldexp(bf16_to_float(uint16_t(half)), 126);
            EXPECT_EQ(got, e2m1_to_float(uint8_t(code))) << "upper " << upper << " value " << v << " code " << code;
          }
        }
      }
    }
  EXPECT_EQ(seen.size(), 4u * 32u);
}
