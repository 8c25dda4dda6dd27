// The attention kernels' tensor-core pieces: m16n8k16 MMAs on FP16 or BF16 operands (FP8 caches
// take FP16, into which E4M3 converts exactly; BF16 caches take BF16), their operand packing,
// and ldmatrix fragment loads from shared memory, in the register layouts of the PTX ISA.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <cstring>

#include "backend/cuda/copy_async.cuh"

namespace fp4llm::cuda {

namespace {

template <bool kF16>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (kF16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <bool kF16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (kF16) {
    const __half2 h = __floats2half2_rn(lo, hi);
    memcpy(&r, &h, 4);
  } else {
    const __nv_bfloat162 b = __floats2bfloat162_rn(lo, hi);
    memcpy(&r, &b, 4);
  }
  return r;
}

// Two E4M3 bytes (low 16 bits) as an FP16 pair, exactly.
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t two) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xFFFF), __NV_E4M3);
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}

// An 8x8 matrix of 16-bit elements held as an MMA fragment (lane l: row l/4, columns 2(l%4) and
// 2(l%4)+1), transposed in registers: lane l gets row l/4 of the transpose.
__device__ __forceinline__ uint32_t transpose_8x8(uint32_t fragment) {
  uint32_t r;
  asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(r) : "r"(fragment));
  return r;
}

// Four 8x8 matrices of 16-bit elements; lanes 8m..8m+7 give the row addresses (16 bytes each,
// 16-byte aligned) of matrix m, whose fragment lands in r[m]. Without .trans lane l gets row l/4,
// columns 2(l%4) and 2(l%4)+1; with .trans rows 2(l%4) and 2(l%4)+1 of column l/4.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}

}  // namespace

}  // namespace fp4llm::cuda
