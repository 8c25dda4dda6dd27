// Where the E2M1 codes of a lane's 16-byte tile slot sit (nvfp4_tiles.hpp), and how a kernel turns
// one 32-bit word of them into the four BF16 pairs of an MMA's A fragment. Host and device: the
// tile packer and its tests use the same placement and the same extraction as the kernels.
//
// Each pair is built with bit operations only: a rotation puts both codes' 3-bit magnitudes at
// BF16's low exponent and top mantissa bits (6-8 and 22-24) and another their signs at 15 and 31,
// giving each value times 2^-126 exactly (E2M1's 0.5 becomes a subnormal). No placement lets one
// rotation serve all four pairs of a word (the sets {6,7,8,15} + r cannot tile 16 positions), so
// the rotations below were searched for the fewest operations: five rotations and six masks per
// word (11, where shifting whole nibbles took 15; the decode GEMV is bound by instruction issue,
// docs/PERFORMANCE.md).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define FP4LLM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FP4LLM_HOST_DEVICE inline
#endif

namespace fp4llm::cuda {

// Left rotations that bring register slot j's magnitudes and signs into place.
FP4LLM_HOST_DEVICE constexpr int magnitude_rotation(int j) { return j == 0 ? 0 : j == 1 ? 3 : j == 2 ? 6 : 9; }
FP4LLM_HOST_DEVICE constexpr int sign_rotation(int j) { return j == 0 ? 4 : j == 1 ? 3 : j == 2 ? 6 : 5; }
inline constexpr uint32_t kPairSigns = 0x80008000u, kPairMagnitudes = 0x01C001C0u;

FP4LLM_HOST_DEVICE constexpr uint32_t rotate_left(uint32_t w, int r) { return r == 0 ? w : (w << r) | (w >> (32 - r)); }

// FP4LLM_E2M1_NIBBLES (cmake -DFP4LLM_E2M1_NIBBLES=ON, or a -D of tools/gemv_bench.cu) builds the
// earlier layout instead, packer and kernels alike: slot j's codes as whole nibbles at bits
// 12 - 4j and 28 - 4j, 15 operations per word. For A/B timings, and a way back.
#ifdef FP4LLM_E2M1_NIBBLES

// Bit of the word holding bit c (0: mantissa, 1 and 2: exponent, 3: sign) of the code that
// becomes half `high` (0: low 16 bits, 1: high) of register slot j.
constexpr int code_bit(int j, int high, int c) { return (high ? 28 : 12) - 4 * j + c; }

// Register slot J of word w as a BF16 pair of E2M1 values times 2^-126.
template <int J>
FP4LLM_HOST_DEVICE constexpr uint32_t e2m1_pair(uint32_t w) {
  const uint32_t sign = (w << (4 * J)) & kPairSigns;
  const uint32_t magnitude = (4 * J >= 6 ? w << (4 * J - 6) : w >> (6 - 4 * J)) & kPairMagnitudes;
  return sign | magnitude;
}
#else

constexpr int code_bit(int j, int high, int c) {
  const int out = (c == 3 ? 15 : 6 + c) + 16 * high;
  return (out - (c == 3 ? sign_rotation(j) : magnitude_rotation(j)) + 32) % 32;
}

template <int J>
FP4LLM_HOST_DEVICE constexpr uint32_t e2m1_pair(uint32_t w) {
  constexpr int kMagnitude = magnitude_rotation(J), kSign = sign_rotation(J);
  const uint32_t m = rotate_left(w, kMagnitude);
  if constexpr (kMagnitude == kSign) return m & (kPairSigns | kPairMagnitudes);
  return (m & kPairMagnitudes) | (rotate_left(w, kSign) & kPairSigns);
}
#endif

}  // namespace fp4llm::cuda
