#include "model/weights.hpp"

#include "formats/nvfp4_block.hpp"

namespace fp4llm {

void QuantizedLinear::dequantize_row(int64_t row, float* out) const {
  const uint8_t* codes = packed.data() + row * (in_features / 2);
  const uint8_t* scales = block_scales.data() + row * (in_features / kNvfp4BlockSize);
  for (int64_t c = 0; c < in_features; ++c) {
    const uint8_t byte = codes[c / 2];
    const uint8_t code = (c & 1) ? uint8_t(byte >> 4) : uint8_t(byte & 0xF);
    out[c] = nvfp4_dequant(code, scales[c / kNvfp4BlockSize], global_scale);
  }
}

}  // namespace fp4llm
