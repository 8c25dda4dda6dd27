// Scalar number formats of NVFP4 checkpoints: E2M1 (FP4), E4M3FN (FP8), BF16 and F16.
// Every function is usable on the host and in CUDA kernels, so the CPU backend and the kernels
// share one definition of each rounding rule.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define FP4LLM_HD __host__ __device__ __forceinline__
#else
#define FP4LLM_HD inline
#endif

namespace fp4llm {

// The one source of truth for the NVFP4 constants.
inline constexpr int kNvfp4BlockSize = 16;  // input elements sharing one E4M3 scale
inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE2M1Max = 6.0f;
inline constexpr float kE4M3MinSubnormal = 1.0f / 512.0f;  // 2^-9

FP4LLM_HD uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

FP4LLM_HD float bits_float(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

// ---------------------------------------------------------------- E4M3FN (bias 7, no inf)

FP4LLM_HD float e4m3_to_float(uint8_t code) {
  const uint32_t sign = uint32_t(code & 0x80) << 24;
  const uint32_t exp = (code >> 3) & 0xF;
  const uint32_t man = code & 0x7;
  if (exp == 0xF && man == 0x7) return bits_float(0x7FC00000u | sign);  // the only NaN codes
  if (exp == 0) {                                                        // subnormal: man * 2^-9
    return bits_float(sign | float_bits(float(man) * kE4M3MinSubnormal));
  }
  return bits_float(sign | ((exp + 120) << 23) | (man << 20));
}

// Round to nearest even with saturation to +-448, as CUDA's
// __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3): NaN gives 0x7F whatever its sign.
FP4LLM_HD uint8_t float_to_e4m3(float x) {
  const uint32_t u = float_bits(x);
  const uint8_t sign = uint8_t((u >> 24) & 0x80);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return 0x7F;
  if (a >= 0x43E00000u) return sign | 0x7E;  // >= 448 (inf included) saturates
  if (a >= 0x3C800000u) {                    // normal range, >= 2^-6
    // Keep 3 of 23 mantissa bits, ties to even; a carry into the exponent is correct.
    const uint32_t rounded = (a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;
    return sign | uint8_t(rounded - (120u << 3));
  }
  // Subnormal range: count units of 2^-9 with ties to even (8 units is the smallest normal).
  const float units = bits_float(a) * 512.0f;  // exact: a power-of-two scaling
  uint32_t q = uint32_t(units);
  const float rest = units - float(q);
  if (rest > 0.5f || (rest == 0.5f && (q & 1u))) ++q;
  return sign | uint8_t(q);
}

// A weight row's E4M3 scale for the FP8 prefill products: 6 x its largest E4M3 block scale x its
// global scale / 448, the bound of its values read from the scales alone (1 for an all-zero row).
// One expression for the CPU's linear_fp8 and the GPU's row-scale kernel, so both agree bit for bit.
FP4LLM_HD float e4m3_row_scale(float largest_block_scale, float global_scale) {
  const float scale = kE2M1Max * largest_block_scale * global_scale / kE4M3Max;
  return scale > 0 ? scale : 1.0f;
}

// A per-token E4M3 scale: the smallest step of the grid 2^(k/8) at or above amax / 448 (1 when
// amax is 0 or NaN), so amax lands in (411, 448]. Unlike amax / 448 itself it stays put when amax
// moves in its last bits (two backends whose amax differ slightly quantize the token alike); only
// exact comparisons and a power-of-two product, so host and device agree bit for bit.
FP4LLM_HD float e4m3_token_scale(float amax) {
  if (!(amax > 0)) return 1.0f;
  const uint32_t u = float_bits(amax / kE4M3Max);
  const uint32_t exponent = u >> 23;               // the sign is clear
  if (exponent == 0) return bits_float(1u << 23);  // 2^-126 covers every subnormal quotient
  const float mantissa = bits_float((u & 0x7FFFFFu) | (127u << 23));  // in [1, 2)
  constexpr float kSteps[9] = {1.0f,         1.09050775f, 1.18920708f, 1.29683959f, 1.41421354f,
                               1.54221082f, 1.68179286f, 1.83400810f, 2.0f};  // float(2^(k/8))
  int k = 0;
  while (kSteps[k] < mantissa) ++k;
  return kSteps[k] * bits_float(exponent << 23);  // times 2^(exponent - 127), exact
}

// ---------------------------------------------------------------- E2M1 (FP4)

FP4LLM_HD float e2m1_to_float(uint8_t code) {
  // bit 3 = sign, bits 2..0 index the magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}.
  const uint32_t mag = code & 0x7;
  const float v = mag < 2 ? 0.5f * float(mag)
                          : float(1u << ((mag >> 1) - 1)) * ((mag & 1) ? 1.5f : 1.0f);
  return (code & 0x8) ? -v : v;
}

// The ModelOpt / PyTorch FP4 cast: ties round to the even code, |x| > 6 saturates to 6, the sign
// bit is set for every x < 0 (so small negatives give -0, code 0x8), NaN gives 0x7.
FP4LLM_HD uint8_t float_to_e2m1(float x) {
  const uint8_t sign = x < 0.0f ? 0x8 : 0x0;
  const float a = bits_float(float_bits(x) & 0x7FFFFFFFu);
  if (!(a == a)) return 0x7;
  // The code counts the midpoints between neighbouring magnitudes that `a` lies above; at a tie
  // the even code wins (strict > above an even code's midpoint, >= above an odd one's). Counting
  // instead of an if-chain: no branch to mispredict on random weights.
  const uint8_t code = uint8_t((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) +
                               (a > 5.0f));
  return sign | code;
}

// ---------------------------------------------------------------- BF16 and F16

FP4LLM_HD float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

// Round to nearest even; NaN stays NaN (quietened), infinities stay infinite.
FP4LLM_HD uint16_t float_to_bf16(float x) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x40);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

FP4LLM_HD float f16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t man = h & 0x3FF;
  if (exp == 0) return bits_float(sign | float_bits(float(man) * (1.0f / 16777216.0f)));  // 2^-24
  if (exp == 0x1F) return bits_float(sign | 0x7F800000u | (man << 13));
  return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

}  // namespace fp4llm
