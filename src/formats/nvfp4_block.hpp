// NVFP4 block quantization of one 16-element block, host and device.
//
// Numerics follow NVIDIA ModelOpt's NVFP4 weight export (FORMATS.md):
//   global scale  g = amax(W) / (6 * 448)                     (float32)
//   block scale   s = E4M3(clamp(amax(block) / (6 * g), 2^-9, 448)), 1.0 for an all-zero block
//   code          c = E2M1(w / (float(s) * g))
//   dequant       w = (e2m1(c) * float(s)) * g   (the first product is exact, so one rounding)
#pragma once

#include "formats/number_formats.hpp"

namespace fp4llm {

// An all-zero tensor has amax 0; any positive global scale then reproduces it exactly, and 1.0
// avoids the 0/0 that ModelOpt's formula would hit.
FP4LLM_HD float nvfp4_global_scale(float amax) {
  return amax > 0.0f ? amax / (kE2M1Max * kE4M3Max) : 1.0f;
}

FP4LLM_HD uint8_t nvfp4_block_scale(float block_amax, float global_scale) {
  if (block_amax == 0.0f) return float_to_e4m3(1.0f);  // ModelOpt: zero blocks get scale 1.0
  float s = block_amax / (kE2M1Max * global_scale);
  // ModelOpt clamps before the cast: the lower bound keeps a tiny non-zero block from getting a
  // zero scale (which would erase it), the upper one is the E4M3 range.
  s = s < kE4M3MinSubnormal ? kE4M3MinSubnormal : (s > kE4M3Max ? kE4M3Max : s);
  return float_to_e4m3(s);
}

// Quantizes 16 values with a given block scale into 8 bytes, element 2i in the low nibble.
FP4LLM_HD void nvfp4_quantize_block(const float* w, uint8_t scale_code, float global_scale,
                                    uint8_t* packed) {
  const float step = e4m3_to_float(scale_code) * global_scale;
  for (int i = 0; i < kNvfp4BlockSize; i += 2) {
    const uint8_t lo = float_to_e2m1(w[i] / step);
    const uint8_t hi = float_to_e2m1(w[i + 1] / step);
    packed[i / 2] = uint8_t(lo | (hi << 4));
  }
}

FP4LLM_HD float nvfp4_dequant(uint8_t code, uint8_t scale_code, float global_scale) {
  return (e2m1_to_float(code) * e4m3_to_float(scale_code)) * global_scale;
}

}  // namespace fp4llm
