#include <string>
#include <cuda_fp8.h>

#include "backend/cuda/attention_rope.cuh"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/kv_cache_load.cuh"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/warp_reduce.cuh"
#include "backend/cuda/paged_attention.hpp"
#include "backend/cuda/split_kv.cuh"

namespace fp4llm::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kBlockSize = int(kCacheBlockSlots);  // tokens per cache block
constexpr int kGroupTimesDim = 2048;    // query heads x head_dim held per block
constexpr int kRopeHeadDim = 256;       // the head_dim built with RoPE in the kernel

struct Args : AttentionInputs {
  AttentionParams p;
  AttentionWorkspace ws;
  __nv_bfloat16* out;
  RopeInAttentionArgs rope;  // rope.qkv set: q is read raw from it (attention_rope.cuh)
};

__device__ __forceinline__ size_t cache_element(const Args& a, const int32_t* table, int key, int kv_head) {
  const int64_t block = table[key / kBlockSize];
  return size_t(cache_row_offset(block * kBlockSize + key % kBlockSize, kv_head, a.p.kv_heads, a.p.head_dim,
                                 a.p.head_major_cache));
}

// Block = (token, kv head, key split), 4 warps. Each warp takes 32 keys at a time, one key per
// lane for the scores (so no reduction per key), then all lanes share the value rows, each lane
// owning D/32 output elements. Online softmax per warp; warps merged through shared memory.
// kRope: the block also takes the rope kernel's work (attention_rope.cuh); built for head_dim 256,
// the shapes that do not take the tensor-core kernel.
template <int D, int G, bool kFp8, bool kRope = false>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(Args a) {
  let_dependents_start();  // the next kernel may be scheduled now (dependent_launch.cuh)
  wait_for_producer();     // launched early (FP4LLM_PDL=all): the inputs are the previous kernel's
  constexpr int E = D / 32;              // value elements per lane
  constexpr int kRowsInFlight = 16;      // value rows loaded before any is used
  constexpr int kKeyWords = kFp8 ? 4 : 8;                    // 32-bit words per 16 key elements
  // 16-element key pieces loaded at once: as many as registers allow beside the accumulators.
  constexpr int kKeyBatch = G * D >= 2048 ? 2 : !kFp8 ? 4 : D / 16 < 8 ? D / 16 : 8;
  const int t = blockIdx.x, kv_head = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = int(a.p.heads / a.p.kv_heads);
  const int pos = a.positions[t];
  // At least p.min_split_keys keys per split: a split of a few keys costs a block's whole latency
  // chain for little work; empty splits just exit.
  KeyRange range;
  if (!split_key_range(a.p, pos, split, int(a.p.min_split_keys), range)) return;
  const int begin = range.begin, end = range.end, active = range.active;
  const int32_t* table = a.block_tables + size_t(a.token_seq[t]) * a.p.max_blocks;

  __shared__ float q_s[G * D];
  __shared__ float p_s[kWarps][G][32];
  __shared__ float m_s[kWarps][G], l_s[kWarps][G];
  if constexpr (kRope) {  // the block whose range ends at the token writes its key and value
    static_assert(D / 2 <= kWarps * 32, "one thread per rotation pair computes the angles");
    __shared__ float rope_cos[D / 2], rope_sin[D / 2];
    rope_group_in_shared<D>(a.rope, a.p, t, kv_head, pos, end == pos + 1, q_s, rope_cos, rope_sin);
  } else {
    for (int i = threadIdx.x; i < group * D; i += blockDim.x)
      q_s[i] = a.q[(size_t(t) * a.p.heads + size_t(kv_head) * group) * D + i];
  }
  __syncthreads();

  float m[G], l[G], acc[G][E];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) acc[h][e] = 0.0f;
  }
  const float score_scale = a.p.scale * a.p.k_scale;
  for (int c0 = begin + warp * 32; c0 < end; c0 += kWarps * 32) {
    const int key = c0 + lane;
    const bool valid = key < end;
    float s[G];
#pragma unroll
    for (int h = 0; h < G; ++h) s[h] = 0.0f;
    if (valid) {
      const size_t at = cache_element(a, table, key, kv_head);
      // The key's bytes all requested before any is used (kKeyBatch pieces in flight).
#pragma unroll
      for (int d0 = 0; d0 < D; d0 += 16 * kKeyBatch) {
        uint32_t raw[kKeyBatch][kKeyWords];
#pragma unroll
        for (int b = 0; b < kKeyBatch; ++b) load_words<kKeyWords>(a.k + (at + d0 + 16 * b) * (kFp8 ? 1 : 2), raw[b]);
#pragma unroll
        for (int b = 0; b < kKeyBatch; ++b) {
          float kf[16];
          decode_cache<16, kFp8>(raw[b], kf);
          const int d = d0 + 16 * b;
#pragma unroll
          for (int h = 0; h < G; ++h) {
            if (h < group) {
#pragma unroll
              for (int e = 0; e < 16; ++e) s[h] += q_s[h * D + d + e] * kf[e];
            }
          }
        }
      }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
      if (h >= group) continue;
      const float score = valid ? s[h] * score_scale : -INFINITY;
      const float m_new = fmaxf(m[h], warp_max(score));  // finite: lane 0's key is valid
      const float alpha = __expf(m[h] - m_new);
      const float pr = valid ? __expf(score - m_new) : 0.0f;
      l[h] = l[h] * alpha + warp_sum(pr);
      m[h] = m_new;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[h][e] *= alpha;
      p_s[warp][h][lane] = pr;
    }
    __syncwarp();
    // Value rows: each lane computed its own key's cache address; lanes fetch 8 rows at a time
    // through those addresses (independent loads in flight, not a chain of dependent ones).
    const size_t my_at = valid ? cache_element(a, table, key, kv_head) : 0;
    const int n = min(32, end - c0);
    for (int j0 = 0; j0 < n; j0 += kRowsInFlight) {
      float vf[kRowsInFlight][E];
#pragma unroll
      for (int u = 0; u < kRowsInFlight; ++u) {
        const size_t at = __shfl_sync(0xffffffffu, my_at, j0 + u);
        if (j0 + u < n) load_cache<E, kFp8>(a.v, at + lane * E, vf[u]);
      }
#pragma unroll
      for (int u = 0; u < kRowsInFlight; ++u) {
        if (j0 + u >= n) break;
#pragma unroll
        for (int h = 0; h < G; ++h) {
          if (h >= group) continue;
          const float pr = p_s[warp][h][j0 + u];
#pragma unroll
          for (int e = 0; e < E; ++e) acc[h][e] += pr * vf[u][e];
        }
      }
    }
    __syncwarp();
  }

  // Merge the warps: q_s is free now and holds each warp's accumulators in turn.
  if (lane == 0) {
#pragma unroll
    for (int h = 0; h < G; ++h) {
      m_s[warp][h] = m[h];
      l_s[warp][h] = l[h];
    }
  }
  __syncthreads();
  for (int w = 0; w < kWarps; ++w) {
    if (warp == w) {
#pragma unroll
      for (int h = 0; h < G; ++h) {
        if (h >= group) continue;
        float mx = -INFINITY;
        for (int ww = 0; ww < kWarps; ++ww) mx = fmaxf(mx, m_s[ww][h]);
        const float f = m[h] == -INFINITY ? 0.0f : __expf(m[h] - mx);
#pragma unroll
        for (int e = 0; e < E; ++e) q_s[h * D + lane * E + e] = (w == 0 ? 0.0f : q_s[h * D + lane * E + e]) + acc[h][e] * f;
      }
    }
    __syncthreads();
  }
  // q_s now holds the merged, unnormalised output of each head.
  for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float mx = -INFINITY, sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, m_s[w][h]);
    if (mx != -INFINITY)
      for (int w = 0; w < kWarps; ++w) sum += l_s[w][h] * (m_s[w][h] == -INFINITY ? 0.0f : __expf(m_s[w][h] - mx));
    store_split_result<D>(a.p, a.ws, a.out, t, kv_head * group + h, d, split, active, q_s[i], mx, sum);
  }
  merge_splits_if_last<D>(a.p, a.ws, a.out, t, kv_head, group, active);
}

template <int D, int G>
void launch_group(const Args& a, int64_t tokens, cudaStream_t stream) {
  const dim3 grid(unsigned(tokens), unsigned(a.p.kv_heads), unsigned(a.p.splits));
  if constexpr (D == kRopeHeadDim) {
    if (a.rope.qkv && a.p.fp8)
      return launch_dependent(early_launch_all(), attention_kernel<D, G, true, true>, grid, dim3(kWarps * 32), 0, stream, a);
    if (a.rope.qkv)
      return launch_dependent(early_launch_all(), attention_kernel<D, G, false, true>, grid, dim3(kWarps * 32), 0, stream, a);
  }
  if (a.rope.qkv) throw_error("CUDA attention: RoPE in the kernel is built for head_dim 256 only");
  if (a.p.fp8) launch_dependent(early_launch_all(), attention_kernel<D, G, true>, grid, dim3(kWarps * 32), 0, stream, a);
  else launch_dependent(early_launch_all(), attention_kernel<D, G, false>, grid, dim3(kWarps * 32), 0, stream, a);
}

// The kernel holds the query group in registers sized at compile time: the group rounded up to
// a power of two (at least 2, at most kGroupTimesDim / D), so no model pays for 16 heads.
template <int D>
void launch(const Args& a, int64_t tokens, cudaStream_t stream) {
  const int64_t group = a.p.heads / a.p.kv_heads;
  if (group <= 2) return launch_group<D, 2>(a, tokens, stream);
  if (group <= 4) return launch_group<D, 4>(a, tokens, stream);
  if (group <= 8) return launch_group<D, 8>(a, tokens, stream);
  if constexpr (16 * D <= kGroupTimesDim)
    if (group <= 16) return launch_group<D, 16>(a, tokens, stream);
  if constexpr (32 * D <= kGroupTimesDim)
    if (group <= 32) return launch_group<D, 32>(a, tokens, stream);
  throw_error("CUDA attention: query group " + std::to_string(group) + " is too large for head_dim " + std::to_string(D));
}

}  // namespace

int64_t max_query_group(int64_t head_dim) { return kGroupTimesDim / head_dim; }

namespace {

void check_launch(const AttentionParams& p, const AttentionWorkspace& ws) {
  if (p.heads % p.kv_heads != 0 || p.heads / p.kv_heads > max_query_group(p.head_dim))
    throw_error("CUDA attention: " + std::to_string(p.heads / p.kv_heads) + " query heads per kv head with head_dim " +
                std::to_string(p.head_dim) + " is not supported (at most " + std::to_string(max_query_group(p.head_dim)) + ")");
  if (p.splits > 1 && (!ws.partial_out || !ws.counters)) throw_error("CUDA attention: split-KV needs a workspace");
}

void launch_any(const Args& a, int64_t tokens, cudaStream_t stream) {
  switch (a.p.head_dim) {
    case 64: launch<64>(a, tokens, stream); break;
    case 128: launch<128>(a, tokens, stream); break;
    case 256: launch<256>(a, tokens, stream); break;
    default: throw_error("CUDA attention: head_dim " + std::to_string(a.p.head_dim) + " is not supported (64, 128 or 256 are)");
  }
}

}  // namespace

void paged_attention(const float* q, const void* k_cache, const void* v_cache, const int32_t* positions,
                     const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                     const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                     cudaStream_t stream) {
  if (tokens == 0) return;
  check_launch(p, ws);
  launch_any({attention_inputs(q, k_cache, v_cache, positions, token_seq, block_tables), p, ws, out, {}}, tokens, stream);
}

bool paged_attention_takes_rope(const AttentionParams& p) { return p.head_dim == kRopeHeadDim; }

void paged_attention_with_rope(const float* qkv, const RopeCacheParams& rp, const RopeCacheIo& io,
                               const int32_t* token_seq, const int32_t* block_tables, int64_t tokens,
                               const AttentionParams& p, const AttentionWorkspace& ws, __nv_bfloat16* out,
                               cudaStream_t stream) {
  if (tokens == 0) return;
  check_launch(p, ws);
  if (!paged_attention_takes_rope(p))
    throw_error("CUDA attention: RoPE in the kernel is built for head_dim 256 only, not " + std::to_string(p.head_dim));
  launch_any({attention_inputs(nullptr, io.k_cache, io.v_cache, io.positions, token_seq, block_tables), p, ws, out,
              rope_in_attention_args(qkv, rp, io, p)},
             tokens, stream);
}

}  // namespace fp4llm::cuda
