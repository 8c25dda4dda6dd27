// Prefill's gate/up pairing: cuBLAS wrote both halves of every gated tile (16 rows: 8 gate rows,
// then their 8 up rows; BF16, or float32 with FP4LLM_PREFILL_GATED_BF16=0) as columns of each
// token's row; these kernels pair them into the activations (rows x n / 2 BF16). A pass over
// memory, bound by its bytes.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/activation.cuh"

namespace fp4llm::cuda {

// One activation a thread, the whole product (FP4LLM_PREFILL_PAIR=rows, measured slower).
template <class T>
__global__ void gated_rows_kernel(const T* y, int64_t rows, int64_t n, bool gelu, __nv_bfloat16* out) {
  const int64_t width = n / 2;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(rows * width); i += size_t(gridDim.x) * blockDim.x) {
    const size_t token = i / width, f = i % width;
    const T* row = y + token * n + f / 8 * 16 + f % 8;
    out[i] = __float2bfloat16_rn(gated_value(float(row[0]), float(row[8]), gelu));
  }
}

// Eight values of 16 bytes' worth of T (BF16: one load; float32: two).
template <class T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  if constexpr (sizeof(T) == 2) {
    const uint4 w = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&w);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]);
      v[2 * j] = f.x, v[2 * j + 1] = f.y;
    }
  } else {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}

// One tile's eight activations of one token a thread (16-byte loads and one 16-byte store), tiles
// [first_tile, first_tile + tiles) of the product: a slice's columns right after its GEMM
// (FP4LLM_PREFILL_PAIR=slices), or all of them (the default). n: the product's columns (a multiple
// of 16).
template <class T>
__global__ void gated_tiles_kernel(const T* y, int64_t rows, int64_t n, int64_t first_tile, int64_t tiles, bool gelu,
                                   __nv_bfloat16* out) {
  const int64_t width = n / 2;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(rows * tiles); i += size_t(gridDim.x) * blockDim.x) {
    const int64_t token = int64_t(i) / tiles, tile = first_tile + int64_t(i) % tiles;
    const T* row = y + token * n + tile * 16;
    float gate[8], up[8];
    load8(row, gate);
    load8(row + 8, up);
    __nv_bfloat162 a[4];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      a[j] = __floats2bfloat162_rn(gated_value(gate[2 * j], up[2 * j], gelu), gated_value(gate[2 * j + 1], up[2 * j + 1], gelu));
    *reinterpret_cast<uint4*>(out + token * width + tile * 8) = *reinterpret_cast<const uint4*>(a);
  }
}

}  // namespace fp4llm::cuda
