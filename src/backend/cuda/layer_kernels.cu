#include <string>
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/dynamic_smem.cuh"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/launch_grid.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope_cache.cuh"
#include "backend/cuda/warp_reduce.cuh"
#include "backend/cuda/wgmma_x_layout.cuh"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

constexpr int kThreads = 256;

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
__device__ float block_sum(float v) {
  __shared__ float part[32];
  __shared__ float total;
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();  // `part` may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < warps ? part[lane] : 0.0f;
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

// `width` values per thread: 8 (one 16-byte load) where rows allow, so that rows read from host
// memory over PCIe (--offload-embeddings) travel in full requests rather than 2-byte ones.
template <int kWidth>
__global__ void embed_kernel(const __nv_bfloat16* embed, const int32_t* ids, int64_t tokens, int64_t hidden,
                             float scale, float* x) {
  const size_t pieces = size_t(tokens) * hidden / kWidth, per_row = size_t(hidden) / kWidth;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < pieces; i += size_t(gridDim.x) * blockDim.x) {
    const size_t t = i / per_row, c = i % per_row * kWidth;
    const __nv_bfloat16* src = embed + size_t(ids[t]) * hidden + c;
    float* dst = x + t * hidden + c;
    if constexpr (kWidth == 8) {
      const uint4 v = *reinterpret_cast<const uint4*>(src);
      const uint32_t words[4] = {v.x, v.y, v.z, v.w};
      float f[8];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        __nv_bfloat162 pair;
        memcpy(&pair, &words[j], 4);
        f[2 * j] = __low2float(pair) * scale;
        f[2 * j + 1] = __high2float(pair) * scale;
      }
      reinterpret_cast<float4*>(dst)[0] = make_float4(f[0], f[1], f[2], f[3]);
      reinterpret_cast<float4*>(dst)[1] = make_float4(f[4], f[5], f[6], f[7]);
    } else {
      dst[0] = __bfloat162float(src[0]) * scale;
    }
  }
}

// Block = one row, each thread kNormVec float4 of it held in registers between the residual add
// and the norm (one read and one write of the residual stream); the norm weights are loaded up
// front so that no load waits on a reduction. Latency-bound (a few microseconds per row).
constexpr int kNormThreads = 1024, kNormVec = 2;

__device__ __forceinline__ float4 load4(const float* base, int64_t i, bool valid) {
  return valid && base ? reinterpret_cast<const float4*>(base)[i] : make_float4(0, 0, 0, 0);
}

// width % 4 == 0: one float4 of a token's weighted sum per thread.
__global__ void weighted_sum_kernel(WeightedRows d, int64_t tokens, int64_t width, float* out) {
  const int64_t quads = width / 4;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(tokens * quads);
       i += size_t(gridDim.x) * blockDim.x) {
    const size_t token = i / quads, q = i % quads;
    reinterpret_cast<float4*>(out)[i] = weighted_load4(d.rows + token * d.count * width, d.weights + token * d.count,
                                                       int(d.count), width, int64_t(q), true);
  }
}

// delta_weights: delta holds delta_count rows per token, summed with these weights. laid_out (or
// null): `out` also written in the pipelined GEMV's x layout for 64 tokens, or 32 for up to 32 rows
// (wgmma_x_layout.cuh; FP4LLM_WGMMA_PIPELINE=layout-written), this block's token's column pairs
// each to its word.
__global__ void __launch_bounds__(kNormThreads) add_norm_kernel(float* x, const float* delta, const float* delta_weights,
                                                               int delta_count, const float* post_w,
                                                               const float* next_w, NormParams n, __nv_bfloat16* out,
                                                               uint8_t* laid_out) {
  let_dependents_start();  // the next kernel may be scheduled now (dependent_launch.cuh)
  wait_for_producer();     // launched early (FP4LLM_PDL=all): the inputs are the previous kernel's
  const int64_t quads = n.width / 4;
  float* row = x + size_t(blockIdx.x) * n.width;
  const int64_t per_token = delta_weights ? delta_count : 1;
  const float* d_row = delta ? delta + size_t(blockIdx.x) * per_token * n.width : nullptr;
  const float* d_weights = delta_weights ? delta_weights + size_t(blockIdx.x) * delta_count : nullptr;
  float4 v[kNormVec], d[kNormVec], pw[kNormVec], nw[kNormVec];
#pragma unroll
  for (int k = 0; k < kNormVec; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * blockDim.x;
    v[k] = load4(row, i, i < quads);
    d[k] = d_weights ? weighted_load4(d_row, d_weights, delta_count, n.width, i, i < quads) : load4(d_row, i, i < quads);
    pw[k] = load4(post_w, i, i < quads);
    nw[k] = gain4(load4(next_w, i, i < quads), n.one_plus);
  }
  if (delta) {
    float ss = 0;
#pragma unroll
    for (int k = 0; k < kNormVec; ++k) ss += sum_squares(d[k]);
    const float inv = post_w ? rsqrtf(block_sum(ss) / float(n.width) + n.eps) : 1.0f;
#pragma unroll
    for (int k = 0; k < kNormVec; ++k) {
      const float4 w = post_w ? gain4(pw[k], n.one_plus) : make_float4(1, 1, 1, 1);
      v[k].x += d[k].x * inv * w.x;
      v[k].y += d[k].y * inv * w.y;
      v[k].z += d[k].z * inv * w.z;
      v[k].w += d[k].w * inv * w.w;
      const int64_t i = threadIdx.x + int64_t(k) * blockDim.x;
      if (i < quads) reinterpret_cast<float4*>(row)[i] = v[k];
    }
  }
  float ss = 0;
#pragma unroll
  for (int k = 0; k < kNormVec; ++k) ss += sum_squares(v[k]);
  const float inv = rsqrtf(block_sum(ss) / float(n.width) + n.eps);
  __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(out + size_t(blockIdx.x) * n.width);
#pragma unroll
  for (int k = 0; k < kNormVec; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * blockDim.x;
    if (i >= quads) continue;
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v[k].x * inv * nw[k].x, v[k].y * inv * nw[k].y);
    const __nv_bfloat162 hi = __floats2bfloat162_rn(v[k].z * inv * nw[k].z, v[k].w * inv * nw[k].w);
    o[2 * i] = lo;
    o[2 * i + 1] = hi;
    if (laid_out) {
      *reinterpret_cast<__nv_bfloat162*>(laid_out + laid_out_pair_offset_for_rows(gridDim.x, int(blockIdx.x), 4 * i)) = lo;
      *reinterpret_cast<__nv_bfloat162*>(laid_out + laid_out_pair_offset_for_rows(gridDim.x, int(blockIdx.x), 4 * i + 2)) = hi;
    }
  }
}

// Where the rope kernels put a head's rotated (or, for v, unchanged) pair (i, i + D/2) of token t:
// q heads into q_out as float32, k and v heads into their cache slot (E4M3 under their scale, or BF16).
__device__ __forceinline__ void store_head_pair(const RopeCacheParams& p, int64_t t, int64_t head, int64_t slot, int64_t i,
                                                float a, float b, float* q_out, void* k_cache, void* v_cache) {
  const int64_t D = p.head_dim, half = D / 2;
  if (head < p.heads) {
    float* dst = q_out + (t * p.heads + head) * D;
    dst[i] = a;
    dst[i + half] = b;
    return;
  }
  const bool is_k = head < p.heads + p.kv_heads;
  const int64_t kv_head = is_k ? head - p.heads : head - p.heads - p.kv_heads;
  const size_t at = size_t(cache_row_offset(slot, kv_head, p.kv_heads, D, p.head_major_cache));
  void* cache = is_k ? k_cache : v_cache;
  const float scale = is_k ? p.k_scale : p.v_scale;
  store_cache(cache, at + i, a, scale, p.fp8);
  store_cache(cache, at + i + half, b, scale, p.fp8);
}

// Block = one head of one token, head_dim / 2 threads; thread i owns elements i and i + D/2,
// the pair RoPE rotates together.
// first_head: 0, or the query heads' count when they are left to the attention (q_out null).
__global__ void rope_cache_kernel(const float* qkv, const int32_t* positions, const int64_t* slots,
                                  const float* q_norm, const float* k_norm, const float* inv_freq,
                                  RopeCacheParams p, float* q_out, void* k_cache, void* v_cache, int first_head) {
  let_dependents_start();
  wait_for_producer();  // launched early (FP4LLM_PDL=all): qkv is the previous kernel's
  const int64_t t = blockIdx.x, head = first_head + int64_t(blockIdx.y), D = p.head_dim, half = D / 2, i = threadIdx.x;
  const int64_t width = (p.heads + 2 * p.kv_heads) * D;
  const float* src = qkv + t * width + head * D;
  float a = src[i], b = src[i + half];
  const bool is_q = head < p.heads, is_k = !is_q && head < p.heads + p.kv_heads;
  // Everything else this thread reads, requested with the head's values, before the reduction's
  // barrier: one memory round trip for the whole kernel instead of one after another.
  float gain_a = 1.0f, gain_b = 1.0f, freq = 0.0f;
  int32_t position = 0;
  if (is_q || is_k) {
    const float* w = is_q ? q_norm : k_norm;
    gain_a = norm_gain(w, i, p.one_plus);
    gain_b = norm_gain(w, i + half, p.one_plus);
    freq = inv_freq[i];
    position = positions[t];
  }
  const int64_t slot = is_q ? 0 : slots[t];
  if (is_q || is_k) {
    const float inv = rsqrtf(block_sum(a * a + b * b) / float(D) + p.eps);
    a = a * inv * gain_a;
    b = b * inv * gain_b;
    rotate_half(a, b, position, freq);
  }
  store_head_pair(p, t, head, slot, i, a, b, q_out, k_cache, v_cache);
}

// The rope kernel with one warp per head (head_dim 64, 128, 256 or 512), kRopeWarps heads of one
// token per block, lane l holding pairs (l + 32j, l + 32j + D/2). The block kernel above spends a
// block of D/2 threads and two block barriers on each head: a 2,048-token Qwen3-8B prompt is
// 98,304 such blocks per layer, 122 us on the H100 against 40 us here (4.4 against 1.46 ms per
// prompt, 2026-12-05, fifteenth session). Here the sum of squares is one warp reduction and no
// barrier is taken.
constexpr int kRopeWarps = 4;

template <int D>
__global__ void __launch_bounds__(kRopeWarps * 32) rope_cache_warps_kernel(const float* qkv, const int32_t* positions,
                                                                           const int64_t* slots, const float* q_norm,
                                                                           const float* k_norm, const float* inv_freq,
                                                                           RopeCacheParams p, float* q_out, void* k_cache,
                                                                           void* v_cache, int first_head) {
  constexpr int kPairs = D / 64, kHalf = D / 2;
  let_dependents_start();
  wait_for_producer();  // launched early (FP4LLM_PDL=all): qkv is the previous kernel's
  const int64_t t = blockIdx.x;
  const int head = first_head + int(blockIdx.y) * kRopeWarps + int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  if (head >= p.heads + 2 * p.kv_heads) return;  // no barrier follows
  const float* src = qkv + t * (p.heads + 2 * p.kv_heads) * D + int64_t(head) * D;
  float a[kPairs], b[kPairs];
#pragma unroll
  for (int j = 0; j < kPairs; ++j) a[j] = src[lane + 32 * j], b[j] = src[lane + 32 * j + kHalf];
  const bool is_q = head < p.heads, is_k = !is_q && head < p.heads + p.kv_heads;
  if (is_q || is_k) warp_norm_rope<D>(a, b, is_q ? q_norm : k_norm, p.eps, p.one_plus, positions[t], inv_freq);
  const int64_t slot = is_q ? 0 : slots[t];
#pragma unroll
  for (int j = 0; j < kPairs; ++j) store_head_pair(p, t, head, slot, lane + 32 * j, a[j], b[j], q_out, k_cache, v_cache);
}

// Steps of more than kRopeWarpsTokens tokens (prefill) take the warp kernel; decode steps keep the
// block kernel, which was as fast there (H100, 2026-12-05: Qwen3-8B 343.5 against 341.8 tok/s at
// batch 1, 4,636 against 4,602 at 16). FP4LLM_ROPE_WARPS=1: the warp kernel for every step; =0:
// never.
constexpr int64_t kRopeWarpsTokens = 16;
bool rope_warps_for(int64_t tokens) {
  static const bool always = knob_is("FP4LLM_ROPE_WARPS", "1"), never = knob_is("FP4LLM_ROPE_WARPS", "0");
  return always || (!never && tokens > kRopeWarpsTokens);
}

// The first head the rope kernels take: the query heads are left to the flash attention where
// io.q is null (flash_prefill_attention with its RopeInAttentionArgs).
int first_roped_head(const RopeCacheParams& p, const RopeCacheIo& io) { return io.q ? 0 : int(p.heads); }

template <int D>
void launch_rope_warps(const float* qkv, int64_t tokens, const RopeCacheParams& p, const RopeCacheIo& io,
                       cudaStream_t stream) {
  const int first = first_roped_head(p, io);
  const dim3 grid(unsigned(tokens), unsigned((p.heads + 2 * p.kv_heads - first + kRopeWarps - 1) / kRopeWarps));
  prefer_smem_carveout<rope_cache_warps_kernel<D>>();
  launch_dependent(early_launch_all(), rope_cache_warps_kernel<D>, grid, dim3(kRopeWarps * 32), 0, stream, qkv,
                   io.positions, io.slots, io.q_norm, io.k_norm, io.inv_freq, p, io.q, io.k_cache, io.v_cache, first);
}

__global__ void gather_kernel(const __nv_bfloat16* src, const int32_t* rows, int64_t count, int64_t width,
                              __nv_bfloat16* dst) {
  const size_t total = size_t(count) * width;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = src[size_t(rows[i / width]) * width + i % width];
}

__global__ void soft_cap_kernel(float* v, int64_t count, float cap) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(count); i += size_t(gridDim.x) * blockDim.x)
    v[i] = cap * tanhf(v[i] / cap);
}

__global__ void argmax_kernel(const float* values, int64_t width, int32_t* out) {
  const float* row = values + size_t(blockIdx.x) * width;
  float best = -INFINITY;
  int32_t index = 0x7fffffff;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x)
    if (row[i] > best) {
      best = row[i];
      index = int32_t(i);
    }
  for (int o = 16; o > 0; o >>= 1) {
    const float b = __shfl_xor_sync(0xffffffffu, best, o);
    const int32_t j = __shfl_xor_sync(0xffffffffu, index, o);
    if (b > best || (b == best && j < index)) {
      best = b;
      index = j;
    }
  }
  __shared__ float bests[32];
  __shared__ int32_t indices[32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    bests[warp] = best;
    indices[warp] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w)
      if (bests[w] > best || (bests[w] == best && indices[w] < index)) {
        best = bests[w];
        index = indices[w];
      }
    out[blockIdx.x] = index == 0x7fffffff ? 0 : index;
  }
}

}  // namespace

void argmax_rows(const float* values, int64_t rows, int64_t width, int32_t* out, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<unsigned(rows), 1024, 0, stream>>>(values, width, out);
  FP4LLM_CUDA_LAUNCHED();
}

void embed_tokens(const __nv_bfloat16* embed, const int32_t* ids, int64_t tokens, int64_t hidden,
                  float scale, float* x, cudaStream_t stream) {
  if (hidden % 8 == 0)
    embed_kernel<8><<<grid_for(tokens * hidden / 8, kThreads), kThreads, 0, stream>>>(embed, ids, tokens, hidden, scale, x);
  else
    embed_kernel<1><<<grid_for(tokens * hidden, kThreads), kThreads, 0, stream>>>(embed, ids, tokens, hidden, scale, x);
  FP4LLM_CUDA_LAUNCHED();
}

namespace {

void launch_add_norm(float* x, const float* delta, const float* delta_weights, int64_t delta_count,
                     const float* post_w, const float* next_w, int64_t rows, const NormParams& n,
                     __nv_bfloat16* out, cudaStream_t stream, uint8_t* laid_out = nullptr) {
  if (rows == 0) return;
  if (laid_out && (rows > 64 || n.width % 64 != 0))
    throw_error("RMSNorm: x laid out for the pipelined GEMV needs at most 64 rows of whole 64-column chunks, not " +
                std::to_string(rows) + " x " + std::to_string(n.width));
  if (n.width % 4 != 0 || n.width > int64_t(kNormThreads) * kNormVec * 4)
    throw_error("RMSNorm: hidden size " + std::to_string(n.width) + " is not supported (a multiple of 4 up to " +
                std::to_string(kNormThreads * kNormVec * 4) + " is)");
  // Fewer threads for narrow rows, so each holds kNormVec float4 and none idles.
  const int threads = int(std::clamp<int64_t>((n.width / 4 + kNormVec - 1) / kNormVec + 31, 32, kNormThreads)) / 32 * 32;
  prefer_smem_carveout<add_norm_kernel>();
  launch_dependent(early_launch_all(), add_norm_kernel, dim3(unsigned(rows)), dim3(unsigned(threads)), 0, stream, x,
                   delta, delta_weights, int(delta_count), post_w, next_w, n, out, laid_out);
}

}  // namespace

void add_and_norm(float* x, const float* delta, const float* post_w, const float* next_w,
                  int64_t rows, const NormParams& n, __nv_bfloat16* out, cudaStream_t stream, uint8_t* out_laid_out) {
  launch_add_norm(x, delta, nullptr, 0, post_w, next_w, rows, n, out, stream, out_laid_out);
}

void add_weighted_and_norm(float* x, const WeightedRows& delta, const float* next_w, int64_t rows,
                           const NormParams& n, __nv_bfloat16* out, cudaStream_t stream) {
  launch_add_norm(x, delta.rows, delta.weights, delta.count, nullptr, next_w, rows, n, out, stream);
}

void weighted_sum(const WeightedRows& delta, int64_t rows, int64_t width, float* out, cudaStream_t stream) {
  if (rows == 0) return;
  if (width % 4 != 0) throw_error("weighted sum: width " + std::to_string(width) + " is not a multiple of 4");
  weighted_sum_kernel<<<grid_for(rows * width / 4, kThreads), kThreads, 0, stream>>>(delta, rows, width, out);
  FP4LLM_CUDA_LAUNCHED();
}

void rope_and_cache(const float* qkv, int64_t tokens, const RopeCacheParams& p, const RopeCacheIo& io, cudaStream_t stream) {
  if (tokens == 0) return;
  if (p.head_dim % 64 != 0 || p.head_dim > 512)
    throw_error("CUDA backend: head_dim " + std::to_string(p.head_dim) + " is not supported (a multiple of 64 up to 512 is)");
  if (rope_warps_for(tokens)) {
    switch (p.head_dim) {
      case 64: return launch_rope_warps<64>(qkv, tokens, p, io, stream);
      case 128: return launch_rope_warps<128>(qkv, tokens, p, io, stream);
      case 256: return launch_rope_warps<256>(qkv, tokens, p, io, stream);
      case 512: return launch_rope_warps<512>(qkv, tokens, p, io, stream);
      default: break;  // the block kernel takes the other multiples of 64
    }
  }
  const int first = first_roped_head(p, io);
  const dim3 grid(unsigned(tokens), unsigned(p.heads + 2 * p.kv_heads - first));
  prefer_smem_carveout<rope_cache_kernel>();
  launch_dependent(early_launch_all(), rope_cache_kernel, grid, dim3(unsigned(p.head_dim / 2)), 0, stream, qkv,
                   io.positions, io.slots, io.q_norm, io.k_norm, io.inv_freq, p, io.q, io.k_cache, io.v_cache, first);
}

void gather_rows(const __nv_bfloat16* src, const int32_t* rows, int64_t count, int64_t width,
                 __nv_bfloat16* dst, cudaStream_t stream) {
  gather_kernel<<<grid_for(count * width, kThreads), kThreads, 0, stream>>>(src, rows, count, width, dst);
  FP4LLM_CUDA_LAUNCHED();
}

void soft_cap(float* values, int64_t count, float cap, cudaStream_t stream) {
  soft_cap_kernel<<<grid_for(count, kThreads), kThreads, 0, stream>>>(values, count, cap);
  FP4LLM_CUDA_LAUNCHED();
}

}  // namespace fp4llm::cuda
