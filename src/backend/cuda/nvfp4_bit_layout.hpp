// Where the four bits of each E2M1 code sit in a lane's 16 bytes of a tile-chunk
// (nvfp4_tiles.hpp), chosen so that the GEMV kernels build BF16 pairs with few logic operations,
// the operation they are bound by at batch 1 (docs/PERFORMANCE.md). Host and device share it:
// the tile packer places the bits, the kernels take them out.
//
// Word i of the 16 bytes feeds MMA i (values 4i..4i+3 of the lane's block for rows g and g+8);
// register slot j of the word is MMA A register j (row g: j = 0, 2; row g+8: j = 1, 3; values
// (0, 1): j = 0, 1; values (2, 3): j = 2, 3), first value in the low BF16 half. A BF16 half
// wants the code's sign at bit 15 and its exponent and mantissa bits at 8, 7, 6 (which makes it
// the E2M1 value times 2^-126, exactly). Slots 0, 1 and 2 keep their bits at those positions
// minus 0, 3 and 6, so one shift and one mask build them; the bits left over go to slot 3,
// which takes three shifts. 11 logic operations per word instead of 15 for nibbles.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FP4LLM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FP4LLM_HOST_DEVICE inline
#endif

namespace fp4llm::cuda {

// Bit of the word holding bit `b` (0: mantissa, 1: low exponent, 2: high exponent, 3: sign) of
// the code in slot `slot`, half `half` (0: low BF16, 1: high).
FP4LLM_HOST_DEVICE int code_bit_position(int slot, int half, int b) {
  constexpr int kTarget[4] = {6, 7, 8, 15};     // BF16 positions, low half
  constexpr int kSlot3[4] = {10, 11, 13, 14};   // what slots 0-2 leave free in each half
  return 16 * half + (slot == 3 ? kSlot3[b] : kTarget[b] - 3 * slot);
}

// Register slot J as a BF16 pair, each half the E2M1 value times 2^-126.
template <int J>
FP4LLM_HOST_DEVICE uint32_t e2m1_bf16_pair(uint32_t w) {
  constexpr uint32_t kPair = 0x81C081C0u;  // bits 6, 7, 8 and 15 of both halves
  if constexpr (J < 3) return (w << (3 * J)) & kPair;
  return ((w >> 4) & 0x00C000C0u) | ((w >> 5) & 0x01000100u) | ((w << 1) & 0x80008000u);
}

}  // namespace fp4llm::cuda
