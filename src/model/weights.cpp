#include "model/weights.hpp"

#include "formats/nvfp4_block.hpp"

namespace fp4llm {

// Per block, a 16-entry table of e2m1 * scale (exact products) times the global scale: the
// same value nvfp4_dequant() computes for each element, at a fraction of the work.
void QuantizedLinear::dequantize_row(int64_t row, float* out) const {
  const uint8_t* codes = packed.data() + row * (in_features / 2);
  const uint8_t* scales = block_scales.data() + row * (in_features / kNvfp4BlockSize);
  float table[16];
  for (int64_t b = 0; b < in_features / kNvfp4BlockSize; ++b) {
    const float s = e4m3_to_float(scales[b]);
    for (int c = 0; c < 16; ++c) table[c] = (e2m1_to_float(uint8_t(c)) * s) * global_scale;
    const uint8_t* q = codes + b * (kNvfp4BlockSize / 2);
    float* o = out + b * kNvfp4BlockSize;
    for (int i = 0; i < kNvfp4BlockSize / 2; ++i) {
      o[2 * i] = table[q[i] & 0xF];
      o[2 * i + 1] = table[q[i] >> 4];
    }
  }
}

}  // namespace fp4llm
