// The one tensor-core instruction the sm_89/sm_90 kernels share: D = A·B + D for a 16x16 BF16
// A (row), 16x8 BF16 B (col) and FP32 accumulators, in the register layout of the PTX ISA.
#pragma once

#include <cstdint>

namespace fp4llm::cuda {

__device__ __forceinline__ void mma_bf16_16x8x16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace fp4llm::cuda
