// The RMSNorm between two decode products, split between them (FP4LLM_NORM_DEFERRED): the norm
// is a per-token scale, so W (x * r * gain) = r * (W (x * gain)), with r = 1 / rms(x). The
// product that updates the residual stream (o_proj, down_proj: kAddNorm) owns whole 16-row tiles
// of it in the direct kernel (K is split only between the warps of a block), so its writing lane
// stores the updated rows times the next norm's gains in BF16, and its tile's sums of squares of
// the rows, one float per (token, tile). The next product (gate/up, the next layer's qkv) reads
// those rows as its x and multiplies each token's sums by r before its epilogue, r from the
// partial sums. Written against what the one-block norm kernel between them costs at batch 1
// (2.1-2.3 us a layer each on Qwen3-8B's critical path, twenty-third session's kernel trace, for
// 16 KB of reads): here a block's extra work is a 1 KB read of partial sums after its chunk loop
// and a warp reduction; the producer's writing lanes add a BF16 store and three shuffles a token.
// Results differ from the norm kernel's by rounding only: the gains multiply before the BF16
// rounding of x and r after the product, as for any per-token scale.
#pragma once

#include "backend/cuda/deferred_norm.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"

namespace fp4llm::cuda {

namespace {

// kAddNorm's epilogue: lane (g, t) holds rows g and g + 8 of the tile for tokens 2t and 2t + 1
// of each token group; the eight lanes of one t together hold the tile's 16 rows of a token.
template <int NT>
__device__ __forceinline__ void write_tile_add_norm(const GemvArgs& p, const Slice& s, int tile, int g, int t,
                                                    const float (&acc)[NT][4]) {
  const float scale_lo = s.tile_scales[2 * tile] * kUnscale, scale_hi = s.tile_scales[2 * tile + 1] * kUnscale;
  const int row = tile * 16 + g;
  const bool has_lo = row < p.n, has_hi = row + 8 < p.n;
  const float gain_lo = has_lo ? p.deferred_gain[row] : 0.0f, gain_hi = has_hi ? p.deferred_gain[row + 8] : 0.0f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int token = nt * 8 + 2 * t + j;
      const bool live = token < s.rows;
      float squares = 0.0f;
      if (live) {
        float* dst = p.y + size_t(token) * p.n + row;
        __nv_bfloat16* scaled = p.deferred_x + size_t(token) * p.n + row;
        if (has_lo) {
          const float v = dst[0] + acc[nt][j] * scale_lo;
          dst[0] = v;
          scaled[0] = __float2bfloat16_rn(v * gain_lo);
          squares += v * v;
        }
        if (has_hi) {
          const float v = dst[8] + acc[nt][j + 2] * scale_hi;
          dst[8] = v;
          scaled[8] = __float2bfloat16_rn(v * gain_hi);
          squares += v * v;
        }
      }
      // Over g (lane bits 2-4), every lane taking part: the tile's 16 rows of this token.
#pragma unroll
      for (int o = 4; o < 32; o <<= 1) squares += __shfl_xor_sync(0xffffffffu, squares, o);
      if (g == 0 && live) p.deferred_sums_out[size_t(token) * p.row_tiles + tile] = squares;
    }
}

// Each of the slice's rows' r = 1 / rms of its row of x (expert groups: through x_rows) from the
// producer's partial sums, one warp a row (in a fixed order, so results never depend on timing),
// into scale (shared memory). Every warp of the block calls it; a block barrier must follow
// before scale is read.
template <int W>
__device__ __forceinline__ void deferred_norm_scales(const GemvArgs& p, const Slice& s, int warp, int lane, float* scale) {
  for (int r = warp; r < s.rows; r += W) {
    const int row = s.x_rows ? s.x_rows[s.begin + r] : s.begin + r;
    const float inv = deferred_inv_rms(p.deferred_sums, p.deferred_parts, row, p.k, p.deferred_eps, lane);
    if (lane == 0) scale[r] = inv;
  }
}

// The direct kernel's last step: the K splits summed and the tile written (with the deferred
// norm's scale, or as kAddNorm for plain products).
template <int NT, bool kGrouped, int W = kWarps>
__device__ __forceinline__ void finish_item(const GemvArgs& p, const Slice& s, const WorkItem& item, float (&acc)[NT][4]) {
  __shared__ float token_scale[NT * 8];
  // Expert groups take it in steps of up to 8 tokens (nvfp4_experts_gated): their two-group
  // kernels keep their registers.
  const bool scaled = (!kGrouped || NT == 1) && p.deferred_sums;  // uniform over the block
  if (scaled) {
    deferred_norm_scales<W>(p, s, item.warp, item.lane, token_scale);
    if (p.splits == 1) __syncthreads();  // else sum_splits' barrier orders the scales first
  }
  if (!sum_splits<NT, W>(acc, p.splits, item.warp, item.split, item.lane) || !item.live) return;
  if constexpr (!kGrouped)
    if (p.epilogue == kAddNorm) return write_tile_add_norm<NT>(p, s, item.tile, item.g, item.t, acc);
  write_tile<NT, kGrouped>(p, s, item.tile, item.g, item.t, acc, scaled ? token_scale : nullptr);
}

}  // namespace

}  // namespace fp4llm::cuda
