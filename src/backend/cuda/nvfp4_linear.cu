#include <string>
#include <cuda_fp8.h>

#include "backend/cuda/mma_bf16.cuh"

#include <algorithm>

#include "backend/cuda/launch_grid.hpp"
#include "backend/cuda/nvfp4_linear.hpp"

namespace fp4llm::cuda {

namespace {

// Measured on the H100 against 4 warps x 8 chunks and 8 x 8 (2026-11-25): 8 x 4 was fastest.
constexpr int kWarps = 8;   // warps per block, splitting a tile's K range between them
constexpr int kUnroll = 4;  // tile-chunks each warp has in flight (bandwidth needs bytes in flight)

struct GemvArgs {
  const uint4* packed;
  const uint16_t* scales;
  const float* tile_scales;
  const __nv_bfloat16* x;
  float* y;
  int rows, n, k, k_chunks, chunks_per_split;
};

// Two E2M1 codes (one byte, first value in the low nibble) placed in BF16 bit positions: the
// 2-bit exponent and 1-bit mantissa land in the low exponent bits and top mantissa bit, which
// yields the value times 2^-126 exactly (E2M1's subnormal 0.5 becomes a BF16 subnormal).
__device__ __forceinline__ uint32_t e2m1x2_bits(uint32_t byte) {
  return ((byte & 0x7u) << 6) | ((byte & 0x8u) << 12) | ((byte & 0x70u) << 18) | ((byte & 0x80u) << 24);
}

__device__ __forceinline__ __nv_bfloat162 as_bf162(uint32_t bits) {
  __nv_bfloat162 v;
  memcpy(&v, &bits, 4);
  return v;
}

__device__ __forceinline__ uint32_t as_u32(__nv_bfloat162 v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  return bits;
}

// e2m1 * block_scale as BF16, exact: the products have at most 5 significant bits.
__device__ __forceinline__ uint32_t dequant2(uint32_t byte, __nv_bfloat162 scale) {
  const __nv_bfloat162 two126 = as_bf162(0x7E807E80u);
  return as_u32(__hmul2(__hmul2(as_bf162(e2m1x2_bits(byte)), two126), scale));
}

__device__ __forceinline__ void scale_pair(uint32_t two_scales, __nv_bfloat162& lo, __nv_bfloat162& hi) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two_scales), __NV_E4M3);
  const float2 f = __half22float2(__half2(h));
  lo = __floats2bfloat162_rn(f.x, f.x);
  hi = __floats2bfloat162_rn(f.y, f.y);
}


// One 64-column chunk: four MMAs per 8-token group. Lane (g, t) holds row g's and row g+8's
// block t; MMA i takes values 4i..4i+3 of that block, so A and B agree on which column each
// MMA position is (any consistent permutation of K gives the same dot products).
template <int NT>
__device__ __forceinline__ void chunk_mma(float (&acc)[NT][4], uint4 w, uint32_t scales, const GemvArgs& p,
                                          int chunk, int g, int t) {
  __nv_bfloat162 s_lo, s_hi;
  scale_pair(scales, s_lo, s_hi);
  uint32_t a[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t lo = i < 2 ? w.x : w.y, hi = i < 2 ? w.z : w.w;
    const int sh = (i & 1) * 16;
    a[i][0] = dequant2((lo >> sh) & 0xFF, s_lo);
    a[i][1] = dequant2((hi >> sh) & 0xFF, s_hi);
    a[i][2] = dequant2((lo >> (sh + 8)) & 0xFF, s_lo);
    a[i][3] = dequant2((hi >> (sh + 8)) & 0xFF, s_hi);
  }
  const int col = chunk * 64 + t * 16;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int token = nt * 8 + g;
    uint4 xa = make_uint4(0, 0, 0, 0), xb = xa;
    if (token < p.rows && col < p.k) {
      const uint4* src = reinterpret_cast<const uint4*>(p.x + size_t(token) * p.k + col);
      xa = __ldg(src);
      xb = __ldg(src + 1);
    }
    mma_bf16_16x8x16(acc[nt], a[0], xa.x, xa.y);
    mma_bf16_16x8x16(acc[nt], a[1], xa.z, xa.w);
    mma_bf16_16x8x16(acc[nt], a[2], xb.x, xb.y);
    mma_bf16_16x8x16(acc[nt], a[3], xb.z, xb.w);
  }
}

// Decode-shape NVFP4 GEMM, written against the memory bound: each weight byte is read once with
// 16-byte streaming loads, kUnroll chunks per warp in flight, dequantized in registers and fed
// to BF16 tensor cores with FP32 accumulation. Block = one 16-row tile x one K split.
template <int NT>
__global__ void __launch_bounds__(kWarps * 32) nvfp4_gemv_kernel(GemvArgs p) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int tile = blockIdx.x, split = blockIdx.y;
  const int begin = split * p.chunks_per_split;
  const int end = min(p.k_chunks, begin + p.chunks_per_split);
  const size_t base = size_t(tile) * p.k_chunks;
  float acc[NT][4] = {};
  for (int c0 = begin + warp * kUnroll; c0 < end; c0 += kWarps * kUnroll) {
    uint4 w[kUnroll];
    uint32_t s[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (c0 + u < end) {
        w[u] = __ldcs(p.packed + (base + c0 + u) * 32 + lane);
        s[u] = __ldcs(p.scales + (base + c0 + u) * 32 + lane);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (c0 + u < end) chunk_mma<NT>(acc, w[u], s[u], p, c0 + u, g, t);
  }

  __shared__ float partial[kWarps][NT * 4 * 32];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 4; ++j) partial[warp][(nt * 4 + j) * 32 + lane] = acc[nt][j];
  __syncthreads();
  const float scale = p.tile_scales[tile];
  float* out = p.y + size_t(split) * p.rows * p.n;
  for (int e = threadIdx.x; e < NT * 4 * 32; e += blockDim.x) {
    float sum = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += partial[w][e];
    const int ln = e % 32, j = (e / 32) % 4, nt = e / 128;
    const int row = tile * 16 + (ln >> 2) + (j >= 2 ? 8 : 0);
    const int token = nt * 8 + (ln & 3) * 2 + (j & 1);
    if (row < p.n && token < p.rows) out[size_t(token) * p.n + row] = sum * scale;
  }
}

__global__ void sum_partials_kernel(const float* partials, int splits, size_t count, float* y) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    float sum = 0;
    for (int s = 0; s < splits; ++s) sum += partials[size_t(s) * count + i];
    y[i] = sum;
  }
}

// Prefill: the whole matrix to BF16 (row-major, k_chunks * 64 columns), global scale included.
__global__ void dequantize_kernel(const uint4* packed, const uint16_t* scales, const float* tile_scales,
                                  int k_chunks, size_t slots, __nv_bfloat16* out) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < slots; i += size_t(gridDim.x) * blockDim.x) {
    const int lane = int(i % 32), g = lane >> 2, t = lane & 3;
    const size_t tile = i / 32 / k_chunks, chunk = i / 32 % k_chunks;
    const uint4 w = packed[i];
    __nv_bfloat162 s_lo, s_hi;
    scale_pair(scales[i], s_lo, s_hi);
    const float gs = tile_scales[tile];
    const size_t ld = size_t(k_chunks) * 64;
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      __nv_bfloat16* dst = out + (tile * 16 + g + 8 * half) * ld + chunk * 64 + t * 16;
#pragma unroll
      for (int b = 0; b < 8; ++b) {
        const uint32_t byte = (words[half * 2 + b / 4] >> (8 * (b % 4))) & 0xFF;
        const float2 v = __bfloat1622float2(as_bf162(dequant2(byte, half ? s_hi : s_lo)));
        dst[2 * b] = __float2bfloat16_rn(v.x * gs);
        dst[2 * b + 1] = __float2bfloat16_rn(v.y * gs);
      }
    }
  }
}

int choose_splits(int64_t row_tiles, int64_t k_chunks, int num_sms) {
  const int64_t wanted = (2 * int64_t(num_sms) + row_tiles - 1) / row_tiles;
  const int64_t most = std::max<int64_t>(1, k_chunks / (kWarps * kUnroll));
  return int(std::clamp<int64_t>(wanted, 1, std::min<int64_t>(most, 16)));
}

template <int NT>
void launch_gemv(const GemvArgs& p, int64_t row_tiles, int splits, cudaStream_t stream) {
  nvfp4_gemv_kernel<NT><<<dim3(unsigned(row_tiles), unsigned(splits)), kWarps * 32, 0, stream>>>(p);
  FP4LLM_CUDA_LAUNCHED();
}

void gemm_bf16(cublasHandle_t h, const __nv_bfloat16* w, int64_t ldw, int64_t n, int64_t k,
               const __nv_bfloat16* x, int64_t rows, float* y, cudaStream_t stream) {
  const float one = 1.0f, zero = 0.0f;
  FP4LLM_CUBLAS_CHECK(cublasSetStream(h, stream));
  FP4LLM_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(rows), int(k), &one, w,
                                   CUDA_R_16BF, int(ldw), x, CUDA_R_16BF, int(k), &zero, y,
                                   CUDA_R_32F, int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

DeviceNvfp4Linear upload_nvfp4(const Nvfp4Tiles& tiles) {
  DeviceNvfp4Linear d;
  d.out_features = tiles.out_features;
  d.in_features = tiles.in_features;
  d.row_tiles = tiles.row_tiles;
  d.k_chunks = tiles.k_chunks;
  d.packed = DeviceBuffer<uint8_t>::from_host(tiles.packed);
  d.scales = DeviceBuffer<uint16_t>::from_host(tiles.scales);
  d.tile_scales = DeviceBuffer<float>::from_host(tiles.tile_scales);
  return d;
}

int64_t nvfp4_partials_needed(int64_t out_features, int64_t k_chunks, int num_sms) {
  const int splits = choose_splits((out_features + 15) / 16, k_chunks, num_sms);
  return splits > 1 ? splits * kMaxDecodeRows * out_features : 0;
}

void nvfp4_linear(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y,
                  LinearWorkspace& ws, cudaStream_t stream) {
  if (rows <= 0) return;
  if (rows > kMaxDecodeRows) {
    const size_t slots = size_t(w.row_tiles * w.k_chunks * 32);
    const size_t need = size_t(w.row_tiles * 16 * w.k_chunks * 64);
    if (ws.dequantized.size() < need) throw_error("NVFP4 linear: dequantization scratch too small");
    dequantize_kernel<<<grid_for(int64_t(slots), 256), 256, 0, stream>>>(
        reinterpret_cast<const uint4*>(w.packed.data()), w.scales.data(), w.tile_scales.data(),
        int(w.k_chunks), slots, ws.dequantized.data());
    FP4LLM_CUDA_LAUNCHED();
    gemm_bf16(ws.cublas, ws.dequantized.data(), w.k_chunks * 64, w.out_features, w.in_features, x, rows, y, stream);
    return;
  }
  const int splits = choose_splits(w.row_tiles, w.k_chunks, ws.num_sms);
  float* out = y;
  if (splits > 1) {
    if (int64_t(ws.partials.size()) < splits * rows * w.out_features) throw_error("NVFP4 linear: partial-sum workspace too small");
    out = ws.partials.data();
  }
  const int per_split = int((w.k_chunks + splits - 1) / splits);
  const GemvArgs p{reinterpret_cast<const uint4*>(w.packed.data()), w.scales.data(), w.tile_scales.data(),
                   x, out, int(rows), int(w.out_features), int(w.in_features), int(w.k_chunks), per_split};
  if (rows <= 8) launch_gemv<1>(p, w.row_tiles, splits, stream);
  else if (rows <= 16) launch_gemv<2>(p, w.row_tiles, splits, stream);
  else if (rows <= 32) launch_gemv<4>(p, w.row_tiles, splits, stream);
  else launch_gemv<8>(p, w.row_tiles, splits, stream);
  if (splits > 1) {
    const size_t count = size_t(rows * w.out_features);
    sum_partials_kernel<<<unsigned(std::min<size_t>((count + 255) / 256, 4096)), 256, 0, stream>>>(out, splits, count, y);
    FP4LLM_CUDA_LAUNCHED();
  }
}

void bf16_linear(const __nv_bfloat16* w, int64_t out_features, int64_t in_features,
                 const __nv_bfloat16* x, int64_t rows, float* y, LinearWorkspace& ws,
                 cudaStream_t stream) {
  gemm_bf16(ws.cublas, w, in_features, out_features, in_features, x, rows, y, stream);
}

}  // namespace fp4llm::cuda
