// Block-level NVFP4 rules with values worked out by hand from the ModelOpt recipe.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "formats/nvfp4_block.hpp"
#include "formats/nvfp4_quantize.hpp"

using namespace fp4llm;

TEST(Nvfp4Block, GlobalScaleIsAmaxOver2688) {
  EXPECT_EQ(nvfp4_global_scale(2688.0f), 1.0f);
  EXPECT_EQ(nvfp4_global_scale(5376.0f), 2.0f);
  EXPECT_EQ(nvfp4_global_scale(0.0f), 1.0f);  // all-zero tensor: no 0/0
}

TEST(Nvfp4Block, BlockScaleCases) {
  const float g = 1.0f / 2688.0f * 6.0f;  // global scale of a tensor whose amax is 6
  // A block holding the tensor's amax gets the top of the E4M3 range.
  EXPECT_EQ(nvfp4_block_scale(6.0f, nvfp4_global_scale(6.0f)), 0x7E);
  EXPECT_EQ(e4m3_to_float(nvfp4_block_scale(6.0f, nvfp4_global_scale(6.0f))), 448.0f);
  // Zero block: scale 1.0 (E4M3 0x38), as ModelOpt sets it.
  EXPECT_EQ(nvfp4_block_scale(0.0f, g), 0x38);
  // A block far below the tensor's amax clamps to the smallest subnormal instead of zero.
  EXPECT_EQ(nvfp4_block_scale(1e-12f, g), 0x01);
}

TEST(Nvfp4Block, AllZeroBlockQuantizesToZeroCodesWithoutNaN) {
  const float w[16] = {};
  uint8_t packed[8];
  nvfp4_quantize_block(w, 0x38, 1.0f / 2688.0f, packed);
  for (uint8_t b : packed) EXPECT_EQ(b, 0);
  EXPECT_EQ(nvfp4_dequant(0, 0x38, 1.0f / 2688.0f), 0.0f);
}

TEST(Nvfp4Block, PacksElementTwoIInTheLowNibble) {
  // Scale 1 and global 1: values are their own E2M1 codes.
  const float w[16] = {0.5f, 6.0f, -1.0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3.0f, -0.5f};
  uint8_t packed[8];
  nvfp4_quantize_block(w, 0x38, 1.0f, packed);
  EXPECT_EQ(packed[0], 0x71);  // w0 = 0.5 (code 1) low, w1 = 6 (code 7) high
  EXPECT_EQ(packed[1], 0x0A);  // w2 = -1 (code 0xA) low
  EXPECT_EQ(packed[7], 0x95);  // w14 = 3 (code 5) low, w15 = -0.5 (code 9) high
}

TEST(Nvfp4Quantize, RepresentableMatrixRoundTripsExactly) {
  // Every row holds the E2M1 magnitudes times 2^-r, so each block's codes are exact; only the
  // float32 global scale (6 / 2688 is not a float) may round, by one part in 2^24.
  const int rows = 3, cols = 32;
  const float mags[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  std::vector<float> w(rows * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      w[r * cols + c] = mags[c % 8] * (c % 3 ? 1.0f : -1.0f) / float(1 << r);
  const Nvfp4Matrix q = quantize_nvfp4(rows, cols, [&](int64_t r, float* out) {
    std::copy_n(&w[r * cols], cols, out);
  });
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const uint8_t byte = q.packed[r * cols / 2 + c / 2];
      const uint8_t code = c & 1 ? byte >> 4 : byte & 0xF;
      const float expected = w[r * cols + c];
      EXPECT_NEAR(nvfp4_dequant(code, q.block_scales[r * cols / 16 + c / 16], q.global_scale),
                  expected, std::fabs(expected) * 2e-7f)
          << r << "," << c;
    }
}

TEST(Nvfp4Quantize, RejectsNonFiniteWeightsAndBadWidths) {
  EXPECT_THROW(quantize_nvfp4(1, 16, [](int64_t, float* out) {
                 std::fill_n(out, 16, 1.0f);
                 out[3] = NAN;
               }),
               std::exception);
  EXPECT_THROW(quantize_nvfp4(1, 24, [](int64_t, float* out) { std::fill_n(out, 24, 1.0f); }),
               std::exception);
}
