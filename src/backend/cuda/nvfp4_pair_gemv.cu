#include "backend/cuda/nvfp4_pair_gemv.cuh"

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

namespace {

using namespace gemv;

// x is scaled by 2^64 (exact in BF16 for |x| < 2^63) so that the products with the unscaled
// weights (E2M1 * 2^-126, see e2m1_bf16_pair) stay normal float32 numbers; the result comes back
// through the global scale times 2^62.
constexpr uint32_t kX2p64 = 0x5F805F80u;  // BF16 pair (2^64, 2^64)
__device__ __forceinline__ float unscale_2p62() { return __int_as_float((127 + 62) << 23); }

// Lane (g, t) holds B column g: token g / 4 of the pair, NVFP4 block g % 4 of the chunk. Its K
// rows are block t's values, so only lanes with t == g % 4 load x (x_row >= 0); the others keep
// the zeros they started with, which costs no instruction per chunk.
template <int NP>
__device__ __forceinline__ void load_pair_x(XFrag<NP>& x, const GemvArgs& p, const int (&x_row)[NP], int chunk, int t) {
  const int col = chunk * 64 + t * 16;
  const __nv_bfloat162 k = as_bf162(kX2p64);
#pragma unroll
  for (int i = 0; i < NP; ++i) {
    if (x_row[i] < 0) continue;
    if (col < p.k) {
      const uint4* src = reinterpret_cast<const uint4*>(p.x + size_t(x_row[i]) * p.k + col);
      x.a[i] = __ldg(src);
      x.b[i] = __ldg(src + 1);
    } else {
      x.a[i] = x.b[i] = make_uint4(0, 0, 0, 0);
    }
    x.a[i].x = as_u32(__hmul2(as_bf162(x.a[i].x), k)), x.a[i].y = as_u32(__hmul2(as_bf162(x.a[i].y), k));
    x.a[i].z = as_u32(__hmul2(as_bf162(x.a[i].z), k)), x.a[i].w = as_u32(__hmul2(as_bf162(x.a[i].w), k));
    x.b[i].x = as_u32(__hmul2(as_bf162(x.b[i].x), k)), x.b[i].y = as_u32(__hmul2(as_bf162(x.b[i].y), k));
    x.b[i].z = as_u32(__hmul2(as_bf162(x.b[i].z), k)), x.b[i].w = as_u32(__hmul2(as_bf162(x.b[i].w), k));
  }
}

__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t two) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two), __NV_E4M3);
  return __half22float2(__half2(h));
}

// One 64-column chunk. Lane (g, t) gets D columns 2t and 2t+1: token t / 2 of each pair, blocks
// 2(t % 2) and 2(t % 2) + 1, rows g and g + 8; four_scales holds those blocks' scales (row g,
// row g + 8 of the first block, then of the second). acc[i]: rows g and g + 8, summed over the
// lane's two blocks.
template <int NP>
__device__ __forceinline__ void pair_chunk(float (&acc)[NP][2], uint4 w, uint32_t four_scales, const XFrag<NP>& x) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
  uint32_t a[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    a[i][0] = e2m1_bf16_pair<0>(words[i]), a[i][1] = e2m1_bf16_pair<1>(words[i]), a[i][2] = e2m1_bf16_pair<2>(words[i]),
    a[i][3] = e2m1_bf16_pair<3>(words[i]);
  const float2 first = e4m3x2_to_float2(four_scales & 0xFFFFu), second = e4m3x2_to_float2(four_scales >> 16);
#pragma unroll
  for (int i = 0; i < NP; ++i) {
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    mma_bf16_16x8x16(d, a[0], x.a[i].x, x.a[i].y);
    mma_bf16_16x8x16(d, a[1], x.a[i].z, x.a[i].w);
    mma_bf16_16x8x16(d, a[2], x.b[i].x, x.b[i].y);
    mma_bf16_16x8x16(d, a[3], x.b[i].z, x.b[i].w);
    acc[i][0] = fmaf(first.x, d[0], fmaf(second.x, d[1], acc[i][0]));
    acc[i][1] = fmaf(first.y, d[2], fmaf(second.y, d[3], acc[i][1]));
  }
}

// Written against the instruction issue rate, which bounds the 8-token kernel at batch 1: the
// same work items, ring of asynchronous copies and split reduction as that kernel
// (nvfp4_linear.cu), with the pair MMA above.
template <int NP, bool kGrouped>
__global__ void __launch_bounds__(kWarps * 32) nvfp4_pair_gemv_kernel(GemvArgs p) {
  Slice s;
  if (!block_slice<2 * NP, kGrouped>(p, s)) return;  // uniform over the block, before any barrier
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int tile = blockIdx.x * (kWarps / p.splits) + warp / p.splits, split = warp % p.splits;
  const bool live = tile < p.row_tiles;
  const int begin = split * p.chunks_per_split;
  const int end = live ? min(p.k_chunks, begin + p.chunks_per_split) : begin;
  const uint4* wp = s.packed + size_t(tile) * p.k_chunks * 32;
  const uint16_t* sp = s.scales + size_t(tile) * p.k_chunks * 32;
  int x_row[NP];
#pragma unroll
  for (int i = 0; i < NP; ++i) {
    const int token = 2 * i + g / 4;
    x_row[i] = g % 4 != t || token >= s.rows ? -1 : kGrouped && p.x_rows ? p.x_rows[s.begin + token] : s.begin + token;
  }
  extern __shared__ uint4 dynamic_smem[];
  WarpRing& ring = reinterpret_cast<WarpRing*>(dynamic_smem)[warp];
  float acc[NP][2] = {};
#pragma unroll
  for (int st = 0; st < kStages; ++st) issue_stage(ring, st, wp, sp, begin + st * kStageChunks, end, lane);
  const int scale_at = 4 * g + 2 * (t % 2);  // the lane's two blocks' scale pairs in a chunk
  XFrag<NP> x = {};
  for (int c0 = begin, st = 0; c0 < end; c0 += kStageChunks, st = (st + 1) % kStages) {
    copy_async_wait<kStages - 1>();  // this lane's copies of stage `st` have landed
    __syncwarp();                    // ... and every other lane's
    uint4 w[kStageChunks];
    uint32_t sc[kStageChunks];
#pragma unroll
    for (int u = 0; u < kStageChunks; ++u)
      w[u] = ring.w[st][u][lane], sc[u] = *reinterpret_cast<const uint32_t*>(&ring.s[st][u][scale_at]);
    __syncwarp();  // the stage is read: refill it
    issue_stage(ring, st, wp, sp, c0 + kStages * kStageChunks, end, lane);
#pragma unroll
    for (int u = 0; u < kStageChunks; ++u) {
      if (c0 + u >= end) continue;
      load_pair_x(x, p, x_row, c0 + u, t);
      pair_chunk<NP>(acc, w[u], sc[u], x);
    }
  }
  if (p.splits > 1) {
    __shared__ float partial[kWarps][NP * 2][32];
#pragma unroll
    for (int i = 0; i < NP; ++i) partial[warp][2 * i][lane] = acc[i][0], partial[warp][2 * i + 1][lane] = acc[i][1];
    __syncthreads();
    if (split != 0) return;
    for (int other = 1; other < p.splits; ++other)
#pragma unroll
      for (int i = 0; i < NP; ++i) acc[i][0] += partial[warp + other][2 * i][lane], acc[i][1] += partial[warp + other][2 * i + 1][lane];
  }
  if (!live) return;
  // Lanes t and t ^ 1 hold the same token's two halves of the chunk's blocks.
#pragma unroll
  for (int i = 0; i < NP; ++i) acc[i][0] += __shfl_xor_sync(~0u, acc[i][0], 1), acc[i][1] += __shfl_xor_sync(~0u, acc[i][1], 1);
  if (t % 2) return;
  const float scale_lo = s.tile_scales[2 * tile] * unscale_2p62(), scale_hi = s.tile_scales[2 * tile + 1] * unscale_2p62();
#pragma unroll
  for (int i = 0; i < NP; ++i) {
    const int token = 2 * i + t / 2;
    if (token < s.rows) store_rows(p, tile, g, output_row<kGrouped>(p, s, token), acc[i][0] * scale_lo, acc[i][1] * scale_hi);
  }
}

template <int NP, bool kGrouped>
void launch(const GemvArgs& p, int64_t rows, unsigned groups, cudaStream_t stream) {
  constexpr int kSmem = kWarps * sizeof(WarpRing);
  static const bool configured = [] {
    FP4LLM_CUDA_CHECK(cudaFuncSetAttribute(nvfp4_pair_gemv_kernel<NP, kGrouped>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)configured;
  const int tiles_per_block = kWarps / p.splits;
  const dim3 grid(unsigned((p.row_tiles + tiles_per_block - 1) / tiles_per_block), groups,
                  unsigned((rows + 2 * NP - 1) / (2 * NP)));
  nvfp4_pair_gemv_kernel<NP, kGrouped><<<grid, kWarps * 32, kSmem, stream>>>(p);
  FP4LLM_CUDA_LAUNCHED();
}

template <bool kGrouped>
void launch_for_rows(const GemvArgs& p, int64_t rows, unsigned groups, cudaStream_t stream) {
  if (rows <= 2) launch<1, kGrouped>(p, rows, groups, stream);
  else if (rows <= 4) launch<2, kGrouped>(p, rows, groups, stream);
  else launch<4, kGrouped>(p, rows, groups, stream);
}

}  // namespace

void launch_pair_gemv(const GemvArgs& p, int64_t rows, unsigned groups, bool grouped, cudaStream_t stream) {
  if (grouped) launch_for_rows<true>(p, rows, groups, stream);
  else launch_for_rows<false>(p, rows, groups, stream);
}

}  // namespace fp4llm::cuda
