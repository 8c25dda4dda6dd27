// How an NVFP4 block scale is chosen. ModelOpt's recipe (the default) maps the block's amax onto
// the largest E2M1 value 6; the search also tries slightly smaller scales, which clip the largest
// value a little but put the other fifteen on a finer grid, and keeps whichever reconstructs the
// block with the smallest squared error. Same file format either way: only the chosen E4M3 scale
// (and so the codes) differ. Host and device.
#pragma once

#include "formats/nvfp4_block.hpp"

namespace fp4llm {

enum class Nvfp4ScaleRule {
  Amax,  // ModelOpt: s = E4M3(amax / (6 g))
  Mse,   // best of s = E4M3(amax / (6 g) * f), f in kNvfp4ScaleSearchFactors
};

// Tried in this order; a later candidate must be strictly better to win, so ties keep the
// larger scale (f = 1 is ModelOpt's choice).
inline constexpr float kNvfp4ScaleSearchFactors[] = {1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f};

// Squared reconstruction error of a block under one scale, summed in order in double.
FP4LLM_HD double nvfp4_block_error(const float* w, uint8_t scale_code, float global_scale) {
  const float step = e4m3_to_float(scale_code) * global_scale;
  double err = 0;
  for (int i = 0; i < kNvfp4BlockSize; ++i) {
    const double d = double(w[i]) - double(nvfp4_dequant(float_to_e2m1(w[i] / step), scale_code, global_scale));
    err += d * d;
  }
  return err;
}

FP4LLM_HD uint8_t nvfp4_block_scale_mse(const float* w, float block_amax, float global_scale) {
  if (block_amax == 0.0f) return nvfp4_block_scale(0.0f, global_scale);
  uint8_t best = 0;
  double best_err = 0;
  for (int k = 0; k < int(sizeof(kNvfp4ScaleSearchFactors) / sizeof(float)); ++k) {
    const uint8_t code = nvfp4_block_scale(block_amax * kNvfp4ScaleSearchFactors[k], global_scale);
    if (k > 0 && code == best) continue;
    const double err = nvfp4_block_error(w, code, global_scale);
    if (k == 0 || err < best_err) {
      best = code;
      best_err = err;
    }
  }
  return best;
}

FP4LLM_HD uint8_t nvfp4_choose_block_scale(Nvfp4ScaleRule rule, const float* w, float block_amax,
                                           float global_scale) {
  return rule == Nvfp4ScaleRule::Mse ? nvfp4_block_scale_mse(w, block_amax, global_scale)
                                     : nvfp4_block_scale(block_amax, global_scale);
}

}  // namespace fp4llm
