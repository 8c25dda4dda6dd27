// x as the warpgroup-MMA GEMVs' B operand takes it (nvfp4_gemv_wgmma.cuh,
// nvfp4_gemv_pipelined.cuh): per 64-column chunk, K-major core matrices of 8 tokens x 16 bytes,
// with K permuted within the chunk as the A fragments are (MMA k-step i takes columns
// 16t + 4i .. 16t + 4i + 3 for t = 0..3). The kernels that stage x use it, and so do the kernels
// that write x in this layout beforehand for the pipelined GEMV (FP4LLM_WGMMA_PIPELINE=layout and
// layout-written).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fp4llm::cuda {

// One x stage: kStageChunks = 128 / N chunks of N tokens (N the MMA's N: 16, 32 or 64 tokens,
// padded), so each of 128 threads stages one (token, chunk).
constexpr int kWgmmaStageBytes = 16 * 1024;

template <int N>
struct WgmmaShape {
  static_assert(N == 16 || N == 32 || N == 64, "the wgmma GEMV takes N = 16, 32 or 64 tokens");
  static constexpr int kStageChunks = 128 / N;
  static constexpr int kStepBytes = N * 32;          // one k-step's B: N tokens x 16 values
  static constexpr int kChunkBytes = 4 * kStepBytes;  // one chunk of x
  static_assert(kStageChunks * kChunkBytes == kWgmmaStageBytes);

  // Byte offset within a chunk's x of core row (token n, k-step i, K half hi): in each k-step the
  // two K halves 128 bytes apart (the descriptor's K stride) and the 8-token core matrices 256
  // bytes apart (its N stride).
  static __device__ __forceinline__ int core_row_offset(int n, int i, int hi) {
    return i * kStepBytes + hi * 128 + (n / 8) * 256 + (n % 8) * 16;
  }
};

// Byte offset, in x laid out for N tokens, of the BF16 pair at columns (col, col + 1) of token n
// (col even): core row (k-step i, K half hi) of its chunk holds, for t = 0..3, the pair at
// 16t + 4i + 2hi as its word t (XChunkRow::store).
template <int N>
__device__ __forceinline__ size_t laid_out_pair_offset(int n, int64_t col) {
  const int j = int(col % 64);
  return size_t(col / 64) * WgmmaShape<N>::kChunkBytes + size_t(WgmmaShape<N>::core_row_offset(n, (j % 16) / 4, (j % 4) / 2)) +
         size_t(4 * (j / 16));
}

// The tokens of the layout that a product of `rows` rows (17-64) reads: launch_gemv_wgmma's N,
// which the kernels writing x laid out beforehand match.
__host__ __device__ constexpr int laid_out_tokens(int64_t rows) { return rows > 32 ? 64 : 32; }

// laid_out_pair_offset for x of `rows` rows.
__device__ __forceinline__ size_t laid_out_pair_offset_for_rows(int64_t rows, int n, int64_t col) {
  return laid_out_tokens(rows) == 64 ? laid_out_pair_offset<64>(n, col) : laid_out_pair_offset<32>(n, col);
}

}  // namespace fp4llm::cuda
