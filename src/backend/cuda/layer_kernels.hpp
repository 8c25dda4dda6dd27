// The small memory-bound kernels between the matrix products: embedding lookup, residual add +
// RMSNorm, per-head q/k norm + RoPE + KV-cache write, row gather, logit
// soft-capping. Each is one pass over its rows; none needs shared memory beyond a reduction.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fp4llm::cuda {

// x[t, :] = embed[ids[t], :] * scale (float32 residual stream).
void embed_tokens(const __nv_bfloat16* embed, const int32_t* ids, int64_t tokens, int64_t hidden,
                  float scale, float* x, cudaStream_t stream);

// One residual step per row: when `delta` is given, x += (post_w ? rmsnorm(delta) * post_w : delta);
// then out = rmsnorm(x) * next_w as BF16 (the next matrix product's input). Gemma3 norms
// multiply by (1 + w) (`one_plus`).
struct NormParams {
  int64_t width = 0;
  float eps = 1e-6f;
  bool one_plus = false;
};
// out_laid_out (or null; at most 64 rows of whole 64-column chunks): out also in the pipelined
// GEMV's x layout (wgmma_x_layout.cuh), for the product that reads it next.
void add_and_norm(float* x, const float* delta, const float* post_w, const float* next_w,
                  int64_t rows, const NormParams& n, __nv_bfloat16* out, cudaStream_t stream,
                  uint8_t* out_laid_out = nullptr);

// The same with delta the weighted sum of `count` rows per token (an MoE layer's chosen experts):
// delta[t] = sum over c of weights[t * count + c] * rows[t * count + c].
struct WeightedRows {
  const float* rows = nullptr;
  const float* weights = nullptr;
  int64_t count = 0;
};
void add_weighted_and_norm(float* x, const WeightedRows& delta, const float* next_w, int64_t rows,
                           const NormParams& n, __nv_bfloat16* out, cudaStream_t stream);
// out[t] = the same weighted sum, stored (expert parallelism: this GPU's share, summed over the
// GPUs before the residual add). Rows of weight 0 are not read.
void weighted_sum(const WeightedRows& delta, int64_t rows, int64_t width, float* out, cudaStream_t stream);

// Per token of the fused q|k|v rows: RMSNorm of each q and k head, rotate-half RoPE at the
// token's position, q written as float32 [tokens, heads, head_dim], k and v stored into the
// paged cache slot `slots[t]` (FP8 E4M3 as sat(x / scale), or BF16).
struct RopeCacheParams {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float eps = 1e-6f;
  bool one_plus = false;
  bool fp8 = true;
  bool head_major_cache = false;  // the cache blocks' order (kv_cache_layout.hpp)
  float k_scale = 1.0f, v_scale = 1.0f;
};
// Where the step reads and writes (device arrays).
struct RopeCacheIo {
  const int32_t* positions = nullptr;  // [tokens]
  const int64_t* slots = nullptr;      // [tokens] cache slot of each token
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  const float* inv_freq = nullptr;     // [head_dim / 2]
  float* q = nullptr;  // null: only keys and values are written (the flash attention takes the queries)
  void* k_cache = nullptr;
  void* v_cache = nullptr;
};
void rope_and_cache(const float* qkv, int64_t tokens, const RopeCacheParams& p, const RopeCacheIo& io, cudaStream_t stream);

// dst[i, :] = src[rows[i], :].
void gather_rows(const __nv_bfloat16* src, const int32_t* rows, int64_t count, int64_t width,
                 __nv_bfloat16* dst, cudaStream_t stream);

// v = cap * tanh(v / cap).
void soft_cap(float* values, int64_t count, float cap, cudaStream_t stream);

// out[r] = index of the largest value of row r (the lowest index among equal maxima).
void argmax_rows(const float* values, int64_t rows, int64_t width, int32_t* out, cudaStream_t stream);

}  // namespace fp4llm::cuda
