// Prefill's dequantization of a whole NVFP4 matrix from the kernels' tile layout
// (nvfp4_tiles.hpp) to row-major values, for a GEMM library to multiply: one thread per 16-byte
// weight slot (one lane's chunk of a 16-row tile), 2 rows x 16 consecutive values each. `Store`
// writes them (BF16 rows here, E4M3 rows in fp8_gemm.cu). Bound by its writes.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/nvfp4_gemv_tile.cuh"

namespace fp4llm::cuda {

// Store(row, column, v): v are the values of columns [column, column + 16) of `row`, global scale
// included (float, exact: the E2M1 value times its block scale, rounded once by the global scale).
template <class Store>
__global__ void dequantize_tiles_kernel(const uint4* packed, const uint16_t* scales, const float* tile_scales,
                                        int k_chunks, size_t slots, Store store) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < slots; i += size_t(gridDim.x) * blockDim.x) {
    const int lane = int(i % 32), g = lane >> 2, t = lane & 3;
    const size_t tile = i / 32 / k_chunks, chunk = i / 32 % k_chunks;
    uint32_t a[4][4];
    dequant_chunk(packed[i], scales[i], a);
#pragma unroll
    for (int upper = 0; upper < 2; ++upper) {
      const float gs = tile_scales[2 * tile + upper] * kUnscale;
      float v[16];
#pragma unroll
      for (int j = 0; j < 16; j += 2) {
        // Values j, j+1 of the block: MMA j / 4, register slot upper + 2 * (j % 4 / 2).
        const float2 f = __bfloat1622float2(as_bf162(a[j / 4][upper + 2 * (j % 4 / 2)]));
        v[j] = f.x * gs;
        v[j + 1] = f.y * gs;
      }
      store(tile * 16 + g + 8 * upper, chunk * 64 + t * 16, v);
    }
  }
}

// BF16 rows of `ld` elements. Two 16-byte stores per row (32-byte aligned: ld and the chunk are
// multiples of 64 values); 2-byte stores made every warp instruction touch 32 sectors for 64 bytes.
struct Bf16Rows {
  __nv_bfloat16* out;
  size_t ld;
  __device__ __forceinline__ void operator()(size_t row, size_t column, const float (&v)[16]) const {
    uint32_t pairs[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) pairs[j] = as_u32(__floats2bfloat162_rn(v[2 * j], v[2 * j + 1]));  // .x: lower address
    uint4* dst = reinterpret_cast<uint4*>(out + row * ld + column);
    dst[0] = make_uint4(pairs[0], pairs[1], pairs[2], pairs[3]);
    dst[1] = make_uint4(pairs[4], pairs[5], pairs[6], pairs[7]);
  }
};

}  // namespace fp4llm::cuda
