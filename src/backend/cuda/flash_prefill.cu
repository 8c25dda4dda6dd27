#include <cuda_fp8.h>

#include <string>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/dynamic_smem.cuh"
#include "backend/cuda/flash_prefill.hpp"
#include "backend/cuda/flash_prefill_pipelined.cuh"
#include "backend/cuda/flash_prefill_staggered.cuh"
#include "backend/cuda/flash_softmax.cuh"
#include "backend/cuda/kv_cache_load.cuh"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/mma_bf16.cuh"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

constexpr int kWarps = 4;        // 16 query rows each
constexpr int kKeys = 64;        // keys per tile
constexpr int kBlockSize = int(kCacheBlockSlots);  // tokens per cache block
constexpr int kPad = 8;          // BF16 elements of row padding: conflict-free fragment loads

using Args = FlashArgs;

__device__ __forceinline__ uint32_t word(const __nv_bfloat16* base, int index) {
  return *reinterpret_cast<const uint32_t*>(base + index);
}

// Block = one query tile x one query head, 4 warps of 16 rows. Shared memory: Q [64][D+8],
// K [64][D+8] and V transposed [D][64+kVtPad], all BF16 (V^T makes PV's B fragments contiguous).
// kVtPad 0 (V^T unpadded, its fragment loads 8-way bank-conflicted) only where the padded
// layout does not fit: head_dim 256 needs 104,448 bytes, above Ada's 101,376 per block.
template <int D, bool kFp8, int kVtPad = kPad>
__global__ void __launch_bounds__(kWarps * 32) flash_kernel(Args a) {
  extern __shared__ __align__(16) uint8_t smem[];
  __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* ks = qs + kKeys * (D + kPad);
  __nv_bfloat16* vt = ks + kKeys * (D + kPad);
  constexpr int kRow = D + kPad, kVtRow = kKeys + kVtPad;

  const FlashBlock b = flash_block(a, 1);
  const WarpRows& r = b.rows;
  const int g = int(threadIdx.x % 32) / 4;  // the fragments' row within 8

  for (int i = threadIdx.x; i < kKeys * D; i += blockDim.x) {
    const int row = i / D, d = i % D;
    const float x = row < b.tile.count ? a.q[(size_t(b.tile.first_token + row) * a.p.heads + b.head) * D + d] : 0.0f;
    qs[row * kRow + d] = __float2bfloat16_rn(x);
  }

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;

  for (int k0 = b.lo; k0 <= r.last; k0 += kKeys) {
    __syncthreads();  // the previous tile's K and V are no longer read
    for (int i = threadIdx.x; i < kKeys * (D / 16); i += blockDim.x) {
      const int key = i / (D / 16), c = (i % (D / 16)) * 16, abs_key = k0 + key;
      float kf[16], vf[16];
      if (abs_key <= r.last) {
        const size_t at = size_t(cache_row_offset(int64_t(b.table[abs_key / kBlockSize]) * kBlockSize + abs_key % kBlockSize,
                                                  b.kv_head, a.p.kv_heads, D, a.p.head_major_cache) + c);
        load_cache<16, kFp8>(a.k, at, kf);
        load_cache<16, kFp8>(a.v, at, vf);
      } else {
#pragma unroll
        for (int e = 0; e < 16; ++e) kf[e] = vf[e] = 0.0f;
      }
#pragma unroll
      for (int e = 0; e < 16; e += 2) *reinterpret_cast<uint32_t*>(ks + key * kRow + c + e) = pack2<false>(kf[e], kf[e + 1]);
#pragma unroll
      for (int e = 0; e < 16; ++e) vt[(c + e) * kVtRow + key] = __float2bfloat16_rn(vf[e]);
    }
    __syncthreads();
    if (!r.has_rows) continue;

    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t qa[4] = {word(qs, r.row0 * kRow + 16 * kk + 2 * r.t), word(qs, (r.row0 + 8) * kRow + 16 * kk + 2 * r.t),
                              word(qs, r.row0 * kRow + 16 * kk + 2 * r.t + 8), word(qs, (r.row0 + 8) * kRow + 16 * kk + 2 * r.t + 8)};
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
        mma_bf16_16x8x16(s[n], qa, word(ks, (n * 8 + g) * kRow + 16 * kk + 2 * r.t), word(ks, (n * 8 + g) * kRow + 16 * kk + 2 * r.t + 8));
    }
    uint32_t pa[kKeys / 16][4];
    const bool mask = a.mask_every_tile || tile_needs_mask(k0, kKeys, r.pos0, r.last, r.window);
    softmax_tile<kKeys, D, false>(mask, s, k0, r.t, r.pos_r, r.window, r.scale_log2, m, l, o, pa);
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) {
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk)
        mma_bf16_16x8x16(o[dn], pa[kk], word(vt, (dn * 8 + g) * kVtRow + 16 * kk + 2 * r.t), word(vt, (dn * 8 + g) * kVtRow + 16 * kk + 2 * r.t + 8));
    }
  }
  if (!r.has_rows) return;
  store_rows<D>(o, l, r.row0, r.t, b.tile.first_token, b.tile.count, a.p.heads, b.head, a.p.v_scale, a.out);
}

constexpr int flash_smem(int d, int vt_pad) { return (2 * kKeys * (d + kPad) + d * (kKeys + vt_pad)) * 2; }

template <int D, int kVtPad>
void launch_with(const Args& a, int64_t num_tiles, cudaStream_t stream) {
  constexpr int kSmem = flash_smem(D, kVtPad);
  const dim3 grid = flash_grid(a, num_tiles, 1);
  if (a.p.fp8) {
    allow_dynamic_smem<flash_kernel<D, true, kVtPad>>(kSmem);
    flash_kernel<D, true, kVtPad><<<grid, kWarps * 32, kSmem, stream>>>(a);
  } else {
    allow_dynamic_smem<flash_kernel<D, false, kVtPad>>(kSmem);
    flash_kernel<D, false, kVtPad><<<grid, kWarps * 32, kSmem, stream>>>(a);
  }
  FP4LLM_CUDA_LAUNCHED();
}

bool flash_stagger_requested() {
  static const bool on = knob_is("FP4LLM_FLASH_STAGGER", "1");
  return on;
}

template <int D, bool kFp8, int kHeads>
int pipelined_smem_bytes() {
  return flash_stagger_requested() ? StaggeredTile<D, kFp8, kHeads>::kSmemBytes : PipelinedTile<D, kFp8, kHeads>::kSmemBytes;
}

// Head_dim 64 and 128 on flash_prefill_pipelined.cuh: a 2,048-token prompt's attention took 13.4
// against 19.2 ms on the first kernel (H100, 2026-12-05, Qwen3-8B; whole prefill 69.6 against
// 75.2 ms, Gemma3-27B 230.4 against 237.0). FP4LLM_FLASH_PIPELINED=0 keeps the first kernel.
// FP4LLM_FLASH_STAGGER=1: flash_prefill_staggered.cuh instead (launch_staggered).
template <int D, bool kFp8, int kHeads, bool kWgmma, bool kWgmmaPv>
void launch_staggered(const Args& a, int64_t num_tiles, cudaStream_t stream) {
  constexpr int kSmem = StaggeredTile<D, kFp8, kHeads>::kSmemBytes;
  if (kSmem > max_dynamic_smem())
    throw_error("FP4LLM_FLASH_STAGGER=1: head_dim " + std::to_string(D) + " with " + std::to_string(kHeads) +
                " heads a block needs " + std::to_string(kSmem) + " bytes of shared memory; this GPU allows " +
                std::to_string(max_dynamic_smem()));
  constexpr auto kernel = flash_staggered_kernel<D, kFp8, kHeads, kWgmma, kWgmmaPv>;
  allow_dynamic_smem<kernel>(kSmem);
  kernel<<<flash_grid(a, num_tiles, kHeads), 128 * kHeads, kSmem, stream>>>(a);
  FP4LLM_CUDA_LAUNCHED();
}

template <int D, bool kFp8, int kHeads, bool kWgmma, bool kWgmmaPv, bool kRope>
void launch_pipelined_with(const Args& a, int64_t num_tiles, cudaStream_t stream) {
  constexpr int kSmem = PipelinedTile<D, kFp8, kHeads>::kSmemBytes;
  constexpr auto kernel = flash_pipelined_kernel<D, kFp8, kHeads, kWgmma, kWgmmaPv, kRope>;
  allow_dynamic_smem<kernel>(kSmem);
  kernel<<<flash_grid(a, num_tiles, kHeads), 128 * kHeads, kSmem, stream>>>(a);
  FP4LLM_CUDA_LAUNCHED();
}

// The queries' rope (a.rope) is instantiated only on the default sm_90 kernel (scores on
// warpgroup MMAs, PV on mma.sync, not staggered): flash_prefill_takes_rope.
template <int D, bool kFp8, int kHeads = 1, bool kWgmma = false, bool kWgmmaPv = false>
void launch_pipelined(const Args& a, int64_t num_tiles, cudaStream_t stream) {
  if constexpr (kWgmma && !kWgmmaPv) {
    if (a.rope.qkv) return launch_pipelined_with<D, kFp8, kHeads, true, false, true>(a, num_tiles, stream);
  }
  if (a.rope.qkv) throw_error("flash attention: the queries' rope is the default sm_90 kernel's");
  if (flash_stagger_requested()) return launch_staggered<D, kFp8, kHeads, kWgmma, kWgmmaPv>(a, num_tiles, stream);
  launch_pipelined_with<D, kFp8, kHeads, kWgmma, kWgmmaPv, false>(a, num_tiles, stream);
}

// The pipelined kernel's scores on warpgroup MMAs (sm_90; wgmma_scores in
// flash_prefill_pipelined.cuh): a 2,048-token Qwen3-8B prompt's attention 9.08 against 10.39 ms
// on mma.sync (H100, 2026-12-06, same call). FP4LLM_FLASH_WGMMA=0 keeps mma.sync.
bool flash_wgmma_requested() {
  static const bool on = !knob_is("FP4LLM_FLASH_WGMMA", "0") && device_is_sm90_or_later();
  return on;
}

// FP4LLM_FLASH_WGMMA_PV=1 (with the scores on warpgroup MMAs): PV on them too (wgmma_values in
// flash_prefill_pipelined.cuh; measured slower than 4 heads a block on mma.sync PV, H100 2026-12-06: a
// 2,048-token Qwen3-8B prompt's attention 11,067 against 9,399 us).
bool flash_wgmma_pv_requested() {
  static const bool on = knob_is("FP4LLM_FLASH_WGMMA_PV", "1") && flash_wgmma_requested();
  return on;
}

// Four query heads of one kv head per block (FP4LLM_FLASH_HEADS=1 or 2: that many), sharing each
// key tile's load and widening, where the query group is a multiple of it and the GPU's shared
// memory holds that many Q planes (Ada's 99 KB at head_dim 128: 2 with an FP8 cache, 1 with
// BF16); else fewer. A 2,048-token Qwen3-8B prompt's attention 10.7 ms with 4, 11.7 with 2, 11.2
// with 1 (H100, 2026-12-06, same call).
template <int D, bool kFp8>
int flash_heads(const AttentionParams& p) {
  static const int64_t wanted = knob_int("FP4LLM_FLASH_HEADS", 4);
  const int64_t group = p.heads / p.kv_heads;
  for (int heads = int(wanted); heads > 1; heads /= 2) {
    const int bytes = heads == 4 ? pipelined_smem_bytes<D, kFp8, 4>() : pipelined_smem_bytes<D, kFp8, 2>();
    if ((heads == 2 || heads == 4) && group % heads == 0 && bytes <= max_dynamic_smem()) return heads;
  }
  return 1;
}

// With PV on warpgroup MMAs at head_dim 128 one head a block: at 2 and 4 (256 and 512 threads,
// held to 128 registers) the accumulators spill and ptxas serialises the MMAs. The staggered
// kernel (FP4LLM_FLASH_STAGGER=1), bounded at one block a SM, takes 2 heads in 165 registers
// without spilling: two warpgroups a phase apart, each with its scores and PV on warpgroup MMAs
// (the 4-head one, held to 128, spills 260 bytes).
template <int D, bool kFp8, bool kWgmma, bool kWgmmaPv = false>
void launch_pipelined_heads(const Args& a, int64_t num_tiles, int heads, cudaStream_t stream) {
  if constexpr (kWgmmaPv && D == 128) {
    if (heads >= 2 && flash_stagger_requested()) return launch_staggered<D, kFp8, 2, true, true>(a, num_tiles, stream);
    launch_pipelined<D, kFp8, 1, true, true>(a, num_tiles, stream);
  } else {
    if (heads == 4) return launch_pipelined<D, kFp8, 4, kWgmma, kWgmmaPv>(a, num_tiles, stream);
    if (heads == 2) return launch_pipelined<D, kFp8, 2, kWgmma, kWgmmaPv>(a, num_tiles, stream);
    launch_pipelined<D, kFp8, 1, kWgmma, kWgmmaPv>(a, num_tiles, stream);
  }
}

template <int D, bool kFp8>
void launch_pipelined_heads(const Args& a, int64_t num_tiles, cudaStream_t stream) {
  const int heads = flash_heads<D, kFp8>(a.p);
  if (flash_wgmma_pv_requested()) return launch_pipelined_heads<D, kFp8, true, true>(a, num_tiles, heads, stream);
  if (flash_wgmma_requested()) return launch_pipelined_heads<D, kFp8, true>(a, num_tiles, heads, stream);
  launch_pipelined_heads<D, kFp8, false>(a, num_tiles, heads, stream);
}

bool pipelined_requested() {
  static const bool on = knob_on("FP4LLM_FLASH_PIPELINED");
  return on;
}

// FP4LLM_FLASH_UNPADDED=1 (tests): head_dim 256 on the unpadded layout Ada takes, on any GPU.
template <int D>
void launch(const Args& a, int64_t num_tiles, cudaStream_t stream) {
  if constexpr (D <= 128) {
    if (pipelined_requested()) {
      if (a.p.fp8) return launch_pipelined_heads<D, true>(a, num_tiles, stream);
      return launch_pipelined_heads<D, false>(a, num_tiles, stream);
    }
  }
  static const bool unpadded = knob_is("FP4LLM_FLASH_UNPADDED", "1");
  const int limit = max_dynamic_smem();
  if (flash_smem(D, kPad) <= limit && !(D == 256 && unpadded)) return launch_with<D, kPad>(a, num_tiles, stream);
  if constexpr (D == 256)
    if (flash_smem(D, 0) <= limit) return launch_with<D, 0>(a, num_tiles, stream);
  throw_error("flash attention: head_dim " + std::to_string(D) + " needs " + std::to_string(flash_smem(D, 0)) +
              " bytes of shared memory per block; this GPU allows " + std::to_string(limit));
}

void flash_prefill(const float* q, const void* k_cache, const void* v_cache, const int32_t* positions,
                   const int32_t* token_seq, const int32_t* block_tables, const QueryTile* tiles, int64_t num_tiles,
                   const AttentionParams& p, __nv_bfloat16* out, cudaStream_t stream, const RopeInAttentionArgs& rope) {
  if (num_tiles == 0) return;
  if (p.heads % p.kv_heads != 0) throw_error("flash attention: heads must be a multiple of kv heads");
  static const bool mask_every_tile = knob_is("FP4LLM_FLASH_MASK_EVERY_TILE", "1");
  // The head groups fastest (flash_grid) where the tiles fit the grid's y, as any step's do.
  static const bool heads_fastest = knob_flag("FP4LLM_FLASH_LONGEST_FIRST", true);
  const Args a{attention_inputs(q, k_cache, v_cache, positions, token_seq, block_tables), tiles, p, out, mask_every_tile,
               heads_fastest && num_tiles <= 65535, rope};
  switch (p.head_dim) {
    case 64: launch<64>(a, num_tiles, stream); break;
    case 128: launch<128>(a, num_tiles, stream); break;
    case 256: launch<256>(a, num_tiles, stream); break;
    default: throw_error("flash attention: head_dim " + std::to_string(p.head_dim) + " is not supported (64, 128 or 256 are)");
  }
}

}  // namespace

bool flash_prefill_takes_rope(const AttentionParams& p) {
  return p.head_dim <= 128 && pipelined_requested() && flash_wgmma_requested() && !flash_wgmma_pv_requested() &&
         !flash_stagger_requested();
}

void flash_prefill_attention(const float* q, const void* k_cache, const void* v_cache, const int32_t* positions,
                             const int32_t* token_seq, const int32_t* block_tables, const QueryTile* tiles,
                             int64_t num_tiles, const AttentionParams& p, __nv_bfloat16* out, cudaStream_t stream) {
  flash_prefill(q, k_cache, v_cache, positions, token_seq, block_tables, tiles, num_tiles, p, out, stream, {});
}

void flash_prefill_attention_with_rope(const float* qkv, const RopeCacheParams& rp, const RopeCacheIo& io,
                                       const int32_t* token_seq, const int32_t* block_tables, const QueryTile* tiles,
                                       int64_t num_tiles, const AttentionParams& p, __nv_bfloat16* out,
                                       cudaStream_t stream) {
  if (!flash_prefill_takes_rope(p))
    throw_error("flash attention: the queries' norm and RoPE are the default sm_90 kernel's (head_dim 64 or 128; FP4LLM_FLASH_PIPELINED, "
                "FP4LLM_FLASH_WGMMA on; FP4LLM_FLASH_WGMMA_PV, FP4LLM_FLASH_STAGGER off)");
  flash_prefill(nullptr, io.k_cache, io.v_cache, io.positions, token_seq, block_tables, tiles, num_tiles, p, out, stream,
                rope_in_attention_args(qkv, rp, io, p));
}

}  // namespace fp4llm::cuda
