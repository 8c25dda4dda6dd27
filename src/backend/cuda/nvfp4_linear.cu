#include <string>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <tuple>
#include <utility>
#include <type_traits>

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/device_slot.hpp"
#include "backend/cuda/dequantize_tiles.cuh"
#include "backend/cuda/dynamic_smem.cuh"
#include "backend/cuda/gated_pairs.cuh"
#include "backend/cuda/l2_ahead.hpp"
#include "backend/cuda/launch_grid.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/nvfp4_experts_down_combined.cuh"
#include "backend/cuda/nvfp4_gemv_direct.cuh"
#include "backend/cuda/nvfp4_gemv_pipelined.cuh"
#include "backend/cuda/nvfp4_gemv_ring.cuh"
#include "backend/cuda/nvfp4_gemv_wgmma.cuh"
#include "backend/cuda/nvfp4_linear.hpp"
#include "backend/cuda/pipelined_gemv_shape.hpp"
#include "backend/cuda/tensor_map.hpp"
#include "util/bool_dispatch.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

// Fewest chunks per warp (FP4LLM_GEMV_MIN_CHUNKS, to compare; default 8). Longer items measured
// no faster at 1 and 16 rows (H200, 2026-12-04: 4, 16 and 32 against 8). Above 16 rows
// FP4LLM_GEMV_MIN_CHUNKS_WIDE (default 8, unmeasured alternatives) sets it instead: fewer splits
// put more tiles with one K range in a block, whose warps then read the same x from L1 rather
// than each tile's x from L2 (the bound at 64 rows, docs/PERFORMANCE.md).
int64_t min_chunks_per_warp(int64_t rows) {
  static const int64_t narrow = std::max<int64_t>(1, knob_int("FP4LLM_GEMV_MIN_CHUNKS", 8));
  static const int64_t wide = std::max<int64_t>(1, knob_int("FP4LLM_GEMV_MIN_CHUNKS_WIDE", 8));
  return rows > 16 ? wide : narrow;
}

// K splits per tile (1, 2, 4 or 8 warps), as many as keep at least min_chunks chunks per warp
// (min_chunks_per_warp() by default): many short blocks fill the SMs in several waves, so the
// last wave's tail is small; measured on the H100 (2026-11-25) against fewer, longer items
// (docs/PERFORMANCE.md).
int choose_splits(int64_t k_chunks, int64_t min_chunks) {
  int splits = 1;
  while (splits < kWarps && k_chunks / (2 * splits) >= min_chunks) splits *= 2;
  return splits;
}

// K in `splits` warps a tile, each ceil(k_chunks / splits) chunks (the last splits may hold
// fewer, or none).
void set_splits(GemvArgs& p, int splits) {
  p.splits = splits;
  p.chunks_per_split = (p.k_chunks + splits - 1) / splits;
}

// Every GEMV kernel's grid: blocks of kWarps / splits tiles over the row tiles; y and z run over
// expert groups and 64-row slices of them.
dim3 gemv_grid(const GemvArgs& p, unsigned groups, unsigned slices, int block_warps = kWarps) {
  const int tiles_per_block = block_warps / p.splits;
  return dim3(unsigned((p.row_tiles + tiles_per_block - 1) / tiles_per_block), groups, slices);
}

// Expert groups of more than 8 possible rows take the instantiations that bound their 8-token
// groups by each block's rows (live_token_groups): Qwen3-30B-A3B at batch 16 2,145 -> 2,242 tok/s,
// at 64 (direct kernel) 4,870 -> 5,008 (H100, 2026-12-06, same call; on the copy ring at 64 it
// lost 2.5%, but the ring no longer takes decode's expert groups). FP4LLM_GEMV_SKIP_PADDED_TOKENS=0
// multiplies every group, as before.
bool skip_padded_tokens_requested() {
  static const bool on = !knob_is("FP4LLM_GEMV_SKIP_PADDED_TOKENS", "0");
  return on;
}

template <int NT, bool kGrouped, bool kSkipPadded>
void launch_ring(const GemvArgs& p, unsigned groups, unsigned slices, cudaStream_t stream) {
  constexpr int kSmem = kWarps * sizeof(WarpRing);
  allow_dynamic_smem<nvfp4_gemv_kernel<NT, kGrouped, kSkipPadded>>(kSmem);
  launch_dependent(early_launch_products(), nvfp4_gemv_kernel<NT, kGrouped, kSkipPadded>, gemv_grid(p, groups, slices),
                   dim3(kWarps * 32), kSmem, stream, p);
}

// The plain product and the expert-grouped one are separate instantiations, so the plain one
// carries no index tables (registers) it does not use.
template <int NT, bool kGrouped>
void launch_gemv(const GemvArgs& p, unsigned groups, unsigned slices, cudaStream_t stream) {
  if constexpr (kGrouped && NT > 1)
    if (skip_padded_tokens_requested()) return launch_ring<NT, kGrouped, true>(p, groups, slices, stream);
  launch_ring<NT, kGrouped, false>(p, groups, slices, stream);
}

// y [rows][ldy] (its first n columns) = or += x W^T for a BF16 W of n rows of stride ldw; y of
// y_type (CUDA_R_32F or CUDA_R_16BF).
void gemm_bf16(cublasHandle_t h, const __nv_bfloat16* w, int64_t ldw, int64_t n, int64_t k,
               const __nv_bfloat16* x, int64_t rows, void* y, cudaDataType_t y_type, int64_t ldy, float beta,
               cudaStream_t stream) {
  const float one = 1.0f;
  FP4LLM_CUBLAS_CHECK(cublasSetStream(h, stream));
  FP4LLM_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(rows), int(k), &one, w,
                                   CUDA_R_16BF, int(ldw), x, CUDA_R_16BF, int(k), &beta, y,
                                   y_type, int(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// The cuBLAS type of a prefill GEMM's output rows: float32, or BF16 (the gated tiles' pairs).
template <class T>
constexpr cudaDataType_t gemm_output_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, __nv_bfloat16>);
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

// Prefill's BF16 scratch: slices of whole tiles up to this many values (64 MB), so that it does
// not grow with the largest matrix (Gemma 3 27B's gate_up: 462 MB whole; an NVFP4 lm_head of
// 262k rows: 2.8 GB). A slice of 8,192 rows at K = 4,096 keeps each GEMM large.
constexpr int64_t kScratchSliceElements = int64_t(32) << 20;

// Prefill's slices: as few as the scratch allows, but of equal size, instead of full slices and a
// ragged last one (FP4LLM_PREFILL_EVEN_SLICES=0), whose GEMM leaves SMs idle: Qwen3-8B's down_proj
// (4,096 rows at K = 12,288) is 2 x 2,048 rows instead of 2,720 + 1,376; Gemma3-27B's qkv 2 x
// 4,096 instead of 6,240 + 1,952, its down_proj 4 x 1,344 instead of 3 x 1,552 + 720. Measured
// (H100, 2026-12-07, same call, a 2,048-token prompt twice each, TFLOP/s with attention): Qwen3-8B
// 513 / 513 -> 523 / 521, Gemma3-27B 512 / 513 -> 527 / 528 (down_proj 59.9 -> 55.9-56.2 ms).
bool prefill_even_slices() {
  static const bool on = !knob_is("FP4LLM_PREFILL_EVEN_SLICES", "0");
  return on;
}

// FP4LLM_PREFILL_SLICE_ROWS=R (tests): slices of at most R rows (rounded down to whole tiles)
// instead.
int64_t tiles_per_slice(const DeviceNvfp4Linear& w) {
  static const int64_t rows = knob_int("FP4LLM_PREFILL_SLICE_ROWS", 0);
  const int64_t most = std::clamp<int64_t>(rows > 0 ? rows / 16 : kScratchSliceElements / (16 * w.k_chunks * 64), 1,
                                           std::max<int64_t>(1, w.row_tiles));
  if (!prefill_even_slices() || w.row_tiles <= 0) return most;
  const int64_t slices = (w.row_tiles + most - 1) / most;
  return (w.row_tiles + slices - 1) / slices;
}

// Prefill's gate/up GEMM writes its rows in BF16, rounding gate and up once before the activation
// as a BF16 transformers model does, so that the pairing pass that follows reads half the bytes: a
// 2,048-token Qwen3-8B prompt 64.4 / 64.3 -> 63.4 / 63.3 ms, 461 -> 468 TFLOP/s with attention
// (H100, 2026-12-06, same call, twice each; the pairing took 120 us a layer of float32).
// FP4LLM_PREFILL_GATED_BF16=0 keeps float32 rows; FP4LLM_FP8_PREFILL's product writes float32.
bool prefill_gated_bf16() {
  static const bool on = !knob_is("FP4LLM_PREFILL_GATED_BF16", "0") && !fp8_prefill_enabled();
  return on;
}

// Rows above kMaxDecodeRows: the weight to BF16 scratch slice by slice, each multiplied by cuBLAS
// into its columns of y (y = or += x W^T), then after_slice(first tile, tiles); with
// FP4LLM_FP8_PREFILL=1 the whole weight and x to E4M3 and cuBLASLt FP8 (fp8_gemm.hpp), one slice.
template <class T, class AfterSlice = void (*)(int64_t, int64_t)>
void dequantized_gemm(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, T* y, float beta,
                      LinearWorkspace& ws, cudaStream_t stream, AfterSlice after_slice = [](int64_t, int64_t) {}) {
  if (ws.dequantized.size() < size_t(prefill_scratch_elements(w))) throw_error("NVFP4 linear: dequantization scratch too small");
  if (fp8_prefill_enabled()) {  // E4M3 in the scratch's bytes (half of them), cuBLASLt FP8
    if constexpr (!std::is_same_v<T, float>) {
      throw_error("NVFP4 linear: the FP8 prefill product writes float32 rows only");
    } else {
      if (!ws.fp8) ws.fp8 = std::make_unique<Fp8Gemm>();
      ws.fp8->multiply(w, x, rows, y, beta, reinterpret_cast<uint8_t*>(ws.dequantized.data()), stream);
      after_slice(0, w.row_tiles);
    }
    return;
  }
  const int64_t ld = w.k_chunks * 64, step = tiles_per_slice(w), chunk_slots = w.k_chunks * 32;
  for (int64_t first = 0; first < w.row_tiles; first += step) {
    const int64_t tiles = std::min(step, w.row_tiles - first), n = std::min(w.out_features, (first + tiles) * 16) - first * 16;
    const size_t slots = size_t(tiles * chunk_slots);
    dequantize_tiles_kernel<<<grid_for(int64_t(slots), 256), 256, 0, stream>>>(
        reinterpret_cast<const uint4*>(w.packed.data()) + first * chunk_slots, w.scales.data() + first * chunk_slots,
        w.tile_scales.data() + 2 * first, int(w.k_chunks), slots, Bf16Rows{ws.dequantized.data(), size_t(ld)});
    FP4LLM_CUDA_LAUNCHED();
    gemm_bf16(ws.cublas, ws.dequantized.data(), ld, n, w.in_features, x, rows, y + first * 16, gemm_output_type<T>(),
              w.out_features, beta, stream);
    after_slice(first, tiles);
  }
}

// Prefill's gate/up pairing, 8 activations a thread with 16-byte loads and stores
// (gated_tiles_kernel) after the last slice: measured (H100, 2026-12-07, same call), a 2,048-token
// prompt of Qwen3-8B 60.9 / 61.1 -> 59.0 ms (487 -> 503 TFLOP/s with attention), of Gemma3-27B
// 214.4 / 215.6 -> 210.5 ms (497 -> 506), against one activation a thread
// (FP4LLM_PREFILL_PAIR=rows, gated_rows_kernel). =slices pairs each slice right after its GEMM,
// while L2 may still hold the slice's rows (a Qwen3-8B gate/up slice: 2,048 x 8,192 BF16, 32 MB):
// 59.5 / 59.6 and 212.0 / 212.7 ms in the same call, no better.
enum class PrefillPairing { rows, tiles, slices };
PrefillPairing prefill_pairing() {
  static const PrefillPairing way = knob_is("FP4LLM_PREFILL_PAIR", "slices") ? PrefillPairing::slices
                                    : knob_is("FP4LLM_PREFILL_PAIR", "rows") ? PrefillPairing::rows
                                                                             : PrefillPairing::tiles;
  return way;
}

template <class T>
void pair_tiles(const T* pairs, int64_t rows, int64_t n, int64_t first_tile, int64_t tiles, bool gelu,
                __nv_bfloat16* out, cudaStream_t stream) {
  gated_tiles_kernel<<<grid_for(rows * tiles, 256), 256, 0, stream>>>(pairs, rows, n, first_tile, tiles, gelu, out);
  FP4LLM_CUDA_LAUNCHED();
}

// Prefill of gated tiles: both halves of every tile into `pairs` (T: float or BF16), then paired up
// into `out`.
template <class T>
void gated_prefill(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, T* pairs, bool gelu,
                   __nv_bfloat16* out, LinearWorkspace& ws, cudaStream_t stream) {
  const PrefillPairing way = prefill_pairing();
  if (way == PrefillPairing::slices) {
    return dequantized_gemm(w, x, rows, pairs, 0.0f, ws, stream, [&](int64_t first, int64_t tiles) {
      pair_tiles(pairs, rows, w.out_features, first, tiles, gelu, out, stream);
    });
  }
  dequantized_gemm(w, x, rows, pairs, 0.0f, ws, stream);
  if (way == PrefillPairing::tiles) return pair_tiles(pairs, rows, w.out_features, 0, w.row_tiles, gelu, out, stream);
  gated_rows_kernel<<<grid_for(rows * w.out_features / 2, 256), 256, 0, stream>>>(pairs, rows, w.out_features, gelu, out);
  FP4LLM_CUDA_LAUNCHED();
}

unsigned device_sms();

// A plain product of one token group whose K already takes all 8 warps of a block (at least 64
// chunks) and whose tiles fit in one wave of 16-warp blocks (two a SM) takes one tile per block of
// 16 warps, K split 16 ways: half the chunks a warp halves each warp's chain of weight round trips
// and doubles the bytes in flight. Measured (H100, 2026-12-06, same call): Qwen3-8B at batch 1
// 354.3 -> 376.0 tok/s (its down projection 15.2 -> 12.2 us a layer on the step's critical path,
// o_proj 7.4 -> 5.8), Qwen3-30B-A3B 403.8 -> 408.2 (o_proj). FP4LLM_GEMV_BLOCK_WARPS=8 keeps
// 8-warp blocks. Without the one-wave bound (Qwen3-8B's qkv and gate_up, 384 and 1,536 tiles, in
// 16-warp blocks of 4 chunks a warp too) it measured slower: 376.8 -> 347.7 tok/s (same call).
// =16-nt2 also takes products of 9-16 rows (two token groups; 64 registers, 20 bytes spilled):
// mixed at batch 16, Qwen3-8B 4,877 -> 4,934 and Qwen3-30B-A3B 2,279 -> 2,256 tok/s (same call).
template <int NT>
bool wide_blocks_for(const GemvArgs& p) {
  static const bool off = knob_is("FP4LLM_GEMV_BLOCK_WARPS", "8");
  static const bool two_groups = knob_is("FP4LLM_GEMV_BLOCK_WARPS", "16-nt2");
  if (off || (NT == 2 && !two_groups) || p.splits != kWarps || p.k_chunks < 4 * kWideWarps) return false;
  return p.row_tiles <= 2 * int(device_sms());
}

template <int NT>
void launch_wide_blocks(GemvArgs p, cudaStream_t stream) {
  set_splits(p, kWideWarps);
  launch_dependent(early_launch_products(), nvfp4_gemv_direct_kernel<NT, false, false, false, false, kWideWarps>,
                   gemv_grid(p, 1, 1, kWideWarps), dim3(kWideWarps * 32), 0, stream, p);
}

// FP4LLM_EXPERTS_SPLITS=wave (not yet measured): the direct kernel's expert groups of one token
// group take as many K splits as keep the whole grid (every possible group) within one wave of
// blocks and at least 2 chunks a warp, instead of the splits that keep 8 chunks a warp. The kernel
// trace (H100, 2026-12-06) put Qwen3-30B-A3B's experts' down projection at 6.5 us a layer on the
// step's critical path for 2.4 us of weights: one split, 12 chunks a warp in 128 blocks, while 512
// blocks of 3 chunks a warp would fit. Its gate/up keeps 4 splits (8 would need two waves).
void fill_one_wave(GemvArgs& p, unsigned groups) {
  static const bool on = knob_is("FP4LLM_EXPERTS_SPLITS", "wave");
  if (!on) return;
  const int64_t slots = int64_t(FP4LLM_GEMV_DIRECT_BLOCKS) * device_sms();
  for (int splits = kWarps; splits > p.splits; splits /= 2) {
    GemvArgs candidate = p;
    set_splits(candidate, splits);
    const dim3 grid = gemv_grid(candidate, groups, 1);
    if (p.k_chunks / splits >= 2 && int64_t(grid.x) * grid.y <= slots) {
      p = candidate;
      return;
    }
  }
}

// kRouteIn: expert groups routed by the kernel itself (nvfp4_experts_gated_routed).
// slices > 1 (expert groups, FP4LLM_EXPERTS_DIRECT): grid z runs over slices of NT * 8 rows of each
// group; the slices past a group's rows exit at once.
template <int NT, bool kGrouped, bool kRouteIn = false>
void launch_gemv_direct(GemvArgs p, unsigned groups, cudaStream_t stream, unsigned slices = 1) {
  if constexpr (kGrouped && NT > 1)  // gemv_deferred_norm.cuh: one token group's expert kernels only
    if (p.deferred_sums) throw_error("NVFP4 expert groups of more than 8 rows cannot take a deferred norm");
  // Early start measured on the H200 (2026-12-04, same-call A/B): Qwen3-30B-A3B's expert groups
  // 313.1 against 298.8 tok/s at batch 1, 1,910 against 1,872 at 16; plain products follow the
  // model's policy (early_launch.hpp).
  if constexpr (NT <= 2 && !kGrouped)
    if (wide_blocks_for<NT>(p)) return launch_wide_blocks<NT>(p, stream);
  if constexpr (NT == 1 && kGrouped) fill_one_wave(p, groups);
  auto* kernel = nvfp4_gemv_direct_kernel<NT, kGrouped, false, kRouteIn>;
  if constexpr (kGrouped && NT > 1 && !kRouteIn)
    if (skip_padded_tokens_requested()) kernel = nvfp4_gemv_direct_kernel<NT, kGrouped, false, false, true>;
  launch_dependent(kGrouped || early_launch_products(), kernel, gemv_grid(p, groups, slices), dim3(kWarps * 32), 0, stream,
                   p);
}

// FP4LLM_GEMV_KERNEL=wgmma: plain products of 9-64 rows on warpgroup MMAs (nvfp4_gemv_wgmma.cuh,
// sm_90), not only 17-64. =wgmma_wide: for 9-16 rows only the matrices with a 64-row group for
// every SM (Qwen3-8B: gate_up alone), since a block per row group leaves SMs idle on the others
// (o_proj and down_proj fill 64 of 132).
bool wgmma_requested() {
  static const bool on =
      (knob_is("FP4LLM_GEMV_KERNEL", "wgmma") || knob_is("FP4LLM_GEMV_KERNEL", "wgmma_wide")) && device_is_sm90_or_later();
  return on;
}

// The wgmma kernel's blocks of 64 rows, and the current device's SMs.
unsigned wgmma_blocks(const GemvArgs& p) { return unsigned((p.row_tiles + 3) / 4); }
unsigned device_sms() {
  int device = 0, sms = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  FP4LLM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return unsigned(sms);
}

bool wgmma_fills_the_gpu(const GemvArgs& p) {
  static const bool wide_only = knob_is("FP4LLM_GEMV_KERNEL", "wgmma_wide");
  return !wide_only || wgmma_blocks(p) >= device_sms();
}

// FP4LLM_WGMMA_RING=1: the wgmma GEMV's weights through a cp.async ring in shared memory, 8
// chunks ahead instead of 2 in registers (WgmmaWeightRing; measured slower at batch 64, H100,
// 2026-12-06: Qwen3-8B 8,181 -> 7,605 tok/s).
// =bulk: the same ring filled by bulk copies (WgmmaBulkRing, chosen at run time by
// GemvArgs::ring_bulk; its first version failed its tests, H100, 2026-12-07; this one refills a
// slot only after the chunk it held was dequantized; not yet run).
bool wgmma_ring_bulk_requested() {
  static const bool on = knob_is("FP4LLM_WGMMA_RING", "bulk");
  return on;
}

bool wgmma_ring_requested() {
  static const bool on = knob_is("FP4LLM_WGMMA_RING", "1") || wgmma_ring_bulk_requested();
  return on;
}

// The dynamic shared memory of a wgmma GEMV block: its x stages, and with kRing a weight ring per warp.
template <int kGroups, bool kShareX, bool kRing, bool kWide = false>
constexpr int wgmma_block_smem() {
  return wgmma_stage_bytes<kGroups, kShareX, kWide>() + (kRing ? 4 * kGroups * kWgmmaRingWarpBytes : 0);
}

template <int N, int kGroups, int kCluster, bool kRing>
void launch_wgmma_groups_with(const GemvArgs& p, unsigned blocks, cudaStream_t stream) {
  constexpr int smem = wgmma_block_smem<kGroups, false, kRing>();
  constexpr auto kernel = nvfp4_gemv_wgmma_kernel<N, kGroups, kCluster, kRing>;
  allow_dynamic_smem<kernel>(smem);
  launch_dependent_in_clusters(early_launch_products(), unsigned(kCluster), kernel, dim3(blocks, 1, unsigned(kCluster)),
                               dim3(kGroups * 128), smem, stream, p);
}

template <int N, int kGroups, int kCluster = 1>
void launch_wgmma_groups(const GemvArgs& p, unsigned blocks, cudaStream_t stream) {
  if (wgmma_ring_requested()) launch_wgmma_groups_with<N, kGroups, kCluster, true>(p, blocks, stream);
  else launch_wgmma_groups_with<N, kGroups, kCluster, false>(p, blocks, stream);
}

// Where two blocks per 64 rows still fit on the SMs (Qwen3-8B's o_proj and down_proj: 64 blocks
// of 132 SMs), each 64 rows take a cluster of two blocks, K split over their eight warpgroups, so
// that the other SMs stream weights too: Qwen3-8B at batch 64 6,611 against 5,722 tok/s (H100,
// 2026-12-06, same call). FP4LLM_WGMMA_CLUSTER=1 keeps one block per 64 rows.
bool wgmma_cluster_requested() {
  static const bool on = !knob_is("FP4LLM_WGMMA_CLUSTER", "1");
  return on;
}

// FP4LLM_WGMMA_CLUSTER=2-wide: where the 64-row blocks are fewer than the SMs but more than half
// of them (Qwen3-8B's qkv: 96 of 132), clusters of two blocks of two warpgroups each (K split four
// ways, as with one block of four), so that 192 blocks of 8 warps spread over every SM instead of
// 96 blocks of 16 warps leaving 36 SMs idle. Measured slower, so off (H100, 2026-12-07, same
// call: Qwen3-8B batch 64 8,100 -> 8,041 tok/s).
bool wgmma_wide_clusters_requested() {
  static const bool on = knob_is("FP4LLM_WGMMA_CLUSTER", "2-wide");
  return on;
}

// Where the 64-row blocks are at least twice the SMs (Qwen3-8B's gate_up: 384), each block takes
// 3 row blocks with one copy of x (nvfp4_gemv_wgmma_shared_x_kernel), reading x from L2 a third as
// often; 3 rather than 4 so that Qwen3-8B's gate_up takes 128 blocks, one for each of 128 SMs of
// 132, instead of 96 (Gemma3-27B's: 224 in two waves instead of 168), and a 384-thread block has
// the registers for overlapped chunks (below). Measured (H100): 4 against none, Qwen3-8B at batch
// 64 7,912 against 6,640 tok/s (2 a block: 7,611; 2026-12-06, same call); 3 against 4 with wide
// stages and overlapped chunks, 8,431 and 8,460 against 8,100 and 8,104 (4 with wide stages:
// 8,391 and 8,361; 3 alone: 8,245), Gemma3-27B 2,548 and 2,549 against 2,340 and 2,342
// (2026-12-07, same calls). FP4LLM_WGMMA_SHARE_X=0 turns it off, =2 or =4 takes 2 or 4; with
// "-every" (tests) every product on the wgmma kernel. Row blocks per block, 0 when off.
int wgmma_share_x(unsigned blocks) {
  static const int groups = [] {  // "2-every", "3-every" and "4-every" read as 2, 3 and 4
    const int64_t v = knob_int("FP4LLM_WGMMA_SHARE_X", 3);
    return v >= 2 && v <= 4 ? int(v) : 0;
  }();
  static const bool everywhere = knob_text("FP4LLM_WGMMA_SHARE_X").ends_with("-every");
  return everywhere || blocks >= 2 * device_sms() ? groups : 0;
}

// The shared-x kernel's x stages filled by every warpgroup and as many times longer (kWide in
// wgmma_slice): one block barrier per 6 chunks at N = 64 and 3 warpgroups instead of per 2.
// Measured with 4 row blocks a block (H100, 2026-12-07, same calls): Qwen3-8B at batch 64 8,100
// -> 8,391 and 8,104 -> 8,361 tok/s. FP4LLM_WGMMA_WIDE_STAGES=0: warpgroup 0 stages x alone.
bool wgmma_wide_stages_requested() {
  static const bool on = !knob_is("FP4LLM_WGMMA_WIDE_STAGES", "0");
  return on;
}

// The shared-x kernel of 3 row blocks dequantizes each chunk while the previous chunk's MMAs run
// (kOverlap in wgmma_slice; two sets of A fragments fit the 168 registers of a 384-thread block,
// not the 128 of 512 threads). With wide stages, Qwen3-8B at batch 64 8,403 -> 8,431 tok/s
// (H100, 2026-12-07, same call). FP4LLM_WGMMA_OVERLAP=0: one set, each chunk's MMAs waited for.
bool wgmma_overlap_requested() {
  static const bool on = !knob_is("FP4LLM_WGMMA_OVERLAP", "0");
  return on;
}

template <int N, int kGroups, bool kRing, bool kWide, bool kOverlap, int kCluster>
void launch_wgmma_shared_x_with(const GemvArgs& p, unsigned blocks, cudaStream_t stream) {
  constexpr int smem = wgmma_block_smem<kGroups, true, kRing, kWide>();
  constexpr auto kernel = nvfp4_gemv_wgmma_shared_x_kernel<N, kGroups, kRing, kWide, kOverlap, kCluster>;
  allow_dynamic_smem<kernel>(smem);
  launch_dependent_in_clusters(early_launch_products(), unsigned(kCluster), kernel,
                               dim3((blocks + kGroups - 1) / kGroups, 1, unsigned(kCluster)), dim3(kGroups * 128), smem,
                               stream, p);
}

// Overlapped chunks where the block's registers allow them: 3 row blocks a block (168 registers a
// thread), or the clusters' 2 (255); not with the ring (never run together).
template <int N, int kGroups, int kCluster = 1>
void launch_wgmma_shared_x(const GemvArgs& p, unsigned blocks, cudaStream_t stream) {
  constexpr bool kOverlapFits = kGroups == 3 || kCluster > 1;
  dispatch_bools(
      [&](auto ring, auto wide, auto overlapped) {
        constexpr bool kRing = decltype(ring)::value, kWide = decltype(wide)::value;
        constexpr bool kOverlap = decltype(overlapped)::value;
        if constexpr ((kOverlapFits || !kOverlap) && !(kRing && kOverlap))
          launch_wgmma_shared_x_with<N, kGroups, kRing, kWide, kOverlap, kCluster>(p, blocks, stream);
        else  // the flags below never ask for these: no launch is ever skipped silently
          throw_error("wgmma GEMV: overlapped chunks without the registers for them, or with the weight ring");
      },
      wgmma_ring_requested(), wgmma_wide_stages_requested(),
      kOverlapFits && wgmma_overlap_requested() && !wgmma_ring_requested());
}

// FP4LLM_WGMMA_SHARE_X_CLUSTER=1: where the 64-row blocks are fewer than twice the SMs (Qwen3-8B's
// o_proj and down_proj: 64; qkv: 96), blocks of 2 row blocks sharing x (the shared-x kernel) in
// clusters of 4 (or 2, where 4 would pass the SMs) that split K, block 0 adding the others' sums
// through distributed shared memory: x is read from L2 once per 128 rows instead of once per 64.
// At batch 64 the clustered kernel of 64 rows reads 3.5 times as many bytes of x as of weights for
// down_proj (1.5 MB of x for 442 KB of weights a row block), and took 76 us a layer for 28 MB
// (H100, 2026-12-07 trace). Measured slower, so off (H100, 2026-12-07, same call: Qwen3-8B at
// batch 64 8,277 -> 6,701 and 6,768 tok/s). Cluster size, 0 when not taken.
int wgmma_shared_x_cluster(unsigned blocks, unsigned sms) {
  static const bool on = knob_is("FP4LLM_WGMMA_SHARE_X_CLUSTER", "1");
  if (!on) return 0;
  const unsigned pairs = (blocks + 1) / 2;
  return pairs * 4 <= sms ? 4 : pairs * 2 <= sms ? 2 : 0;
}

// FP4LLM_WGMMA_PIPELINE (unset: =layout-unclustered for dense models, pipelined_gemv_default; off
// for MoE models): products of 33-64 rows
// on the pipelined kernel (nvfp4_gemv_pipelined.cuh), a producer warpgroup keeping stages of
// weights and x ahead of 2 or 3 consumer warpgroups, in the block shape that fills the SMs best
// (pipelined_gemv_shape). Its first producers, by cp.async (=1: Qwen3-8B batch 64 8,379 -> 6,830
// tok/s, H100, 2026-12-07, same call) and by 128-byte bulk copies (=bulk), are gone (code at
// 161cbff).
// =layout: x written in the MMA's layout by a kernel of its own first (x_to_mma_layout_kernel), so
// that a stage's x is one 16 KB bulk copy and the weights 2 x 4 x C more: no per-row copies, no
// rewrite. The fastest products yet, but its layout kernels cost more on Qwen3-8B (H100,
// 2026-12-07, thirtieth session: batch 64 8,405 -> 7,829 tok/s; Gemma3-27B 2,542 -> 3,292).
bool wgmma_pipeline_layout_requested() {
  static const bool on = knob_is("FP4LLM_WGMMA_PIPELINE", "layout") || knob_is("FP4LLM_WGMMA_PIPELINE", "layout-written");
  return on;
}

// =layout-unclustered (the dense models' default since the thirty-second session; this value sets it
// for MoE models too): =layout-written, but only for the products that the default
// runs without clusters (one block, or the shared-x kernel, a 64 rows). Written against the
// batch-64 traces (H100, 2026-12-07, thirty-first session, us a layer, defaults -> =layout-written):
// Gemma3-27B, whose products all run so, qkv 41.9 -> 31.4, o_proj 30.4 -> 25.5, gate_up 143.6 ->
// 137.7, down 133.2 -> 71.1 (2,555 -> 3,178 tok/s); Qwen3-8B qkv 30.7 -> 27.6 and gate_up 57.9 ->
// 55.6, but its clustered o_proj 27.1 -> 32.8 and down 52.3 -> 57.9 (8,450 -> 8,252). Taken
// through LinearWorkspace::pipeline_unclustered (pipelined_gemv_default), like the default.
bool wgmma_pipeline_unclustered() {
  static const bool on = knob_is("FP4LLM_WGMMA_PIPELINE", "layout-unclustered");
  return on;
}

// =layout-written: =layout, but where the kernel that writes a product's x can also
// write it in the MMA's layout (the norm after o_proj and down_proj, read by gate/up and the next
// qkv; the gated epilogue, read by down_proj), it does, and that product needs no layout kernel:
// the three of a Qwen3-8B layer that added 7.9, 11.3 and 14.9 us in the step's trace at batch 64
// (H100, 2026-12-07, thirtieth session). o_proj's input (the attention's) keeps its kernel (1.8).
// Measured (thirty-first session): Qwen3-8B batch 64 8,450 -> 8,252, Gemma3-27B 2,555 -> 3,178.
bool layout_written_requested() {
  static const bool on = knob_is("FP4LLM_WGMMA_PIPELINE", "layout-written") && device_is_sm90_or_later();
  return on;
}

// =tma: x moved by tensor copies from its rows as the product before wrote them, one box of 64
// rows x 64 columns a chunk (a 128-byte-swizzled 8 KB), then rewritten in the block, for what
// =layout gained on the products (Qwen3-8B 167.8 -> 156.0 us a layer in the step's trace) without
// its layout kernel (36 us a layer). Measured (H100, 2026-12-07, thirtieth session): the rewrite
// costs more than =layout's copies, Qwen3-8B batch 64 8,479 -> 7,842, Gemma3-27B 2,564 -> 2,999.
bool wgmma_pipeline_tma_requested() {
  static const bool on = knob_is("FP4LLM_WGMMA_PIPELINE", "tma") || knob_is("FP4LLM_WGMMA_PIPELINE", "tma-plain");
  return on;
}

// =tma-plain: the tensor-copy pipeline only for the products that the default would give one
// plain block a 64 rows (neither shared x nor clusters: their row blocks between half the SMs and
// twice them), where =tma was faster on gemv_bench (H100, 2026-12-07: Gemma3-27B's down_proj
// 139.2 -> 84.7 us, o_proj 32.5 -> 23.9, qkv 43.7 -> 35.8; Qwen3-8B's qkv 32.5 -> 29.4). In the
// step the products after it slowed instead (Qwen3-8B batch 64 8,424 -> 7,719; Gemma3-27B 2,539 ->
// 2,828), so off.
bool wgmma_pipeline_plain_only() {
  static const bool on = knob_is("FP4LLM_WGMMA_PIPELINE", "tma-plain");
  return on;
}

// Every product of 33-64 rows on the pipelined kernel (=tma-plain and the unclustered mode only
// some: launch_gemv_wgmma).
bool wgmma_pipeline_requested() {
  static const bool on = wgmma_pipeline_layout_requested() || knob_is("FP4LLM_WGMMA_PIPELINE", "tma");
  return on;
}

// The laid-out x of =layout: two buffers a device, used in turn by consecutive products, so that
// a product's layout kernel never writes what the product before it is still reading (launched
// early, it waits for its predecessor, which waited for the one before). Allocated outside any
// graph capture (prepare_gemv_scratch), never freed.
constexpr size_t kLaidOutBytes = size_t(4) << 20;  // K up to 32,768 at N = 64
struct LaidOutX {
  uint8_t* buffers[2] = {};
  unsigned next = 0;
  // =layout-written only: the norm's output and the gated activations (each read by the next
  // product only, which the next writer of the same buffer waits for through the products between).
  uint8_t* normed = nullptr;
  uint8_t* act = nullptr;
};

std::mutex laid_out_mutex;

// The current device's buffers, as allocated so far.
LaidOutX& laid_out_slot() {
  static std::array<LaidOutX, 64> per_device;
  return per_device[current_device_slot(per_device.size())];
}

LaidOutX& laid_out_x(bool written = layout_written_requested()) {
  LaidOutX& mine = laid_out_slot();
  const std::lock_guard lock(laid_out_mutex);
  for (uint8_t*& b : mine.buffers)
    if (!b) FP4LLM_CUDA_CHECK(cudaMalloc(&b, kLaidOutBytes));
  if (written)
    for (uint8_t** b : {&mine.normed, &mine.act})
      if (!*b) FP4LLM_CUDA_CHECK(cudaMalloc(b, kLaidOutBytes));
  return mine;
}

// FP4LLM_WGMMA_PIPELINE_N32=1 (not yet run): products of 17-32 rows take the pipelined kernel too,
// where the mode in force takes those of 33-64 rows (the dense models' default: where unclustered),
// on N = 32 tokens; the norm and the gated epilogue then lay out 17-64 rows (writes_laid_out), the
// others go through the layout kernel. Written against batch 64, where the pipelined products
// gained most on Gemma3-27B (its down_proj 133 -> 71 us a layer, thirty-first session):
// Gemma3-27B's batch 32 runs the wgmma kernel at 1,862 tok/s (H100, 2026-12-07).
bool pipeline_n32_requested() {
  static const bool on = knob_is("FP4LLM_WGMMA_PIPELINE_N32", "1") && device_is_sm90_or_later();
  return on;
}

// =layout-written (and the pipelined default, LinearWorkspace::pipeline_unclustered): whether a
// writer of `rows` x `k` inputs writes them laid out too (33-64 rows, the pipelined kernel's, or
// 17-64 with FP4LLM_WGMMA_PIPELINE_N32; whole chunks, so that no column of the buffer is stale).
bool writes_laid_out(const LinearWorkspace& ws, int64_t rows, int64_t k) {
  const int64_t fewest = pipeline_n32_requested() ? 17 : 33;
  return (layout_written_requested() || ws.pipeline_unclustered) && rows >= fewest && rows <= kMaxDecodeRows &&
         k % 64 == 0 && size_t(k / 64) * WgmmaShape<64>::kChunkBytes <= kLaidOutBytes;
}

// The laid-out copy of x, if its writer left one for this product; forgotten either way.
const uint8_t* take_laid_out(LinearWorkspace& ws, const void* x, int64_t rows) {
  const LaidOutInput ready = ws.next_input;
  ws.next_input = {};
  return ready.x == x && ready.rows == rows ? ready.laid_out : nullptr;
}

// FP4LLM_WGMMA_PIPELINE_ABLATE=x,weights,compute (any of them; gemv_bench only, the results are
// wrong): the pipelined kernel leaves out x's copies, the weights' copies or the consumers'
// dequantization and MMAs, so that what a stage's time is made of shows
// (GemvArgs::pipeline_ablate).
int pipeline_ablation() {
  static const int bits = [] {
    const std::string_view value = knob_text("FP4LLM_WGMMA_PIPELINE_ABLATE");
    int b = 0;
    if (value.empty()) return b;
    for (const std::string_view item : knob_list_items(value)) {
      if (item == "x") b |= 1;
      else if (item == "weights") b |= 2;
      else if (item == "compute") b |= 4;
      else throw_error("FP4LLM_WGMMA_PIPELINE_ABLATE: a list of x, weights and compute, got \"" + std::string(value) + "\"");
    }
    return b;
  }();
  return bits;
}

// FP4LLM_WGMMA_PIPELINE_STAGES=S,R: the pipelined kernel's stages of weights and x in the MMA
// layout and of row-major x (unset: 5 and, for =tma, 4: about the most that fit a block of 3
// consumer warpgroups). Only =tma uses the row-major stages; with x laid out none are allocated
// (152 KB a block instead of 218), nearer the default kernels' 96-128 KB and their L1
// configuration: measured, H100, 2026-12-07, same call, =layout-unclustered at Qwen3-8B batch 64
// 8,082 tok/s with 5,4 and 8,574 with 5,0.
std::pair<int, int> pipeline_stage_counts() {
  static const std::pair<int, int> counts = [] {
    const int default_raw = wgmma_pipeline_tma_requested() ? 4 : 0;
    const auto [stages, raw] = knob_pair("FP4LLM_WGMMA_PIPELINE_STAGES", {5, default_raw});
    if (stages < 2 || raw < (wgmma_pipeline_tma_requested() ? 1 : 0) || raw > 8)
      throw_error("FP4LLM_WGMMA_PIPELINE_STAGES: at least 2 stages and 0-8 row-major stages of x (=tma: 1-8)");
    const int bytes = PipelineLayout<64, 3>::bytes(stages, raw);
    if (bytes > max_dynamic_smem())
      throw_error("FP4LLM_WGMMA_PIPELINE_STAGES: " + std::to_string(stages) + " stages and " + std::to_string(raw) +
                  " of x need " + std::to_string(bytes) + " bytes of shared memory a block, more than the " +
                  std::to_string(max_dynamic_smem()) + " this GPU gives");
    return std::pair<int, int>{stages, raw};
  }();
  return counts;
}

// The stage counts for N tokens: a stage of N = 32 holds twice the chunks of N = 64's, so about
// half as many stages (at least 2), and none of row-major x (=tma takes 64 tokens only).
template <int N>
std::pair<int, int> pipeline_stage_counts_for() {
  static_assert(N == 32 || N == 64, "the pipelined kernel takes 32 or 64 tokens");
  const auto [stages, raw] = pipeline_stage_counts();
  if constexpr (N == 64) return {stages, raw};
  else return {std::max(2, (stages + 1) / 2), 0};
}

template <int N, int kConsumers>
int pipeline_smem_bytes() {
  const auto [stages, raw] = pipeline_stage_counts_for<N>();
  return PipelineLayout<N, kConsumers>::bytes(stages, raw);
}

// How many clusters of kCluster blocks of the 3-warpgroup kernel run at once.
template <int N, int kCluster>
int64_t pipeline_clusters_at_once() {
  constexpr auto kernel = nvfp4_gemv_pipelined_kernel<N, 3, kCluster>;
  const int smem = pipeline_smem_bytes<N, 3>();
  allow_dynamic_smem<kernel>(smem);
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim = {1, 1, unsigned(kCluster)};
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(1, 1, unsigned(kCluster));
  config.blockDim = dim3(4 * 128);
  config.dynamicSmemBytes = size_t(smem);
  config.attrs = &attribute;
  config.numAttrs = 1;
  int clusters = 0;
  FP4LLM_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &config));
  return clusters;
}

template <int N>
ClusterCapacity pipeline_cluster_capacity() {
  static const ClusterCapacity capacity{int64_t(device_sms()), pipeline_clusters_at_once<N, 2>(),
                                        pipeline_clusters_at_once<N, 4>()};
  return capacity;
}

// FP4LLM_WGMMA_PIPELINE_DRAIN=D (1, 2 or 4; unset 1): the pipelined kernel's consumers drain
// their MMAs every D stages instead of every stage (pipeline_consume; measured slower, H100,
// 2026-12-07: Qwen3-8B batch 64 with =layout-unclustered 8,082 -> 7,950 tok/s at 2).
int pipeline_drain_stages() {
  static const int d = [] {
    const int64_t v = knob_int("FP4LLM_WGMMA_PIPELINE_DRAIN", 1);
    if (v != 1 && v != 2 && v != 4) throw_error("FP4LLM_WGMMA_PIPELINE_DRAIN: 1, 2 or 4 stages");
    return int(v);
  }();
  return d;
}

template <int N, int kConsumers, int kCluster, int kDrainStages>
void launch_gemv_pipelined_drained(const GemvArgs& p, cudaStream_t stream) {
  const int smem = pipeline_smem_bytes<N, kConsumers>();
  constexpr auto kernel = nvfp4_gemv_pipelined_kernel<N, kConsumers, kCluster, kDrainStages>;
  allow_dynamic_smem<kernel>(smem);
  GemvArgs q = p;
  std::tie(q.pipeline_stages, q.pipeline_raw_stages) = pipeline_stage_counts_for<N>();
  // Tensor copies need 16-byte aligned rows; other x (K not a multiple of 8) takes the layout kernel,
  // as does x of N = 32 tokens.
  q.pipeline_tma = N == 64 && wgmma_pipeline_tma_requested() && p.k % 8 == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0;
  q.pipeline_ablate = pipeline_ablation();
  const CUtensorMap x_map = q.pipeline_tma ? bf16_row_chunks_tensor_map(p.x, p.rows, p.k, N) : CUtensorMap{};
  if (!q.pipeline_tma && !p.x_laid_out) {  // (=layout-written: x's writer may have laid it out already)
    constexpr int kChunkBytes = WgmmaShape<N>::kChunkBytes;
    if (size_t(p.k_chunks) * kChunkBytes > kLaidOutBytes)
      throw_error("FP4LLM_WGMMA_PIPELINE: " + std::to_string(p.k) + " input features need " +
                  std::to_string(size_t(p.k_chunks) * kChunkBytes) + " bytes of laid-out x, more than its " +
                  std::to_string(kLaidOutBytes));
    LaidOutX& laid = laid_out_x();
    uint8_t* out = laid.buffers[laid.next++ % 2];
    prefer_smem_carveout<x_to_mma_layout_kernel<N>>();
    launch_dependent(early_launch_products(), x_to_mma_layout_kernel<N>, dim3(unsigned((p.k_chunks * N + 127) / 128)),
                     dim3(128), 0, stream, p.x, p.rows, p.k, p.k_chunks, out);
    q.x_laid_out = out;
  }
  const unsigned blocks = unsigned((p.row_tiles + 4 * kConsumers - 1) / (4 * kConsumers));
  launch_dependent_in_clusters(early_launch_products(), unsigned(kCluster), kernel, dim3(blocks, 1, unsigned(kCluster)),
                               dim3((kConsumers + 1) * 128), size_t(smem), stream, q, x_map);
}

template <int N, int kConsumers, int kCluster>
void launch_gemv_pipelined_with(const GemvArgs& p, cudaStream_t stream) {
  if constexpr (N == 64) {  // (N = 32: every stage drained)
    const int drain = pipeline_drain_stages();
    if (drain == 4) return launch_gemv_pipelined_drained<N, kConsumers, kCluster, 4>(p, stream);
    if (drain == 2) return launch_gemv_pipelined_drained<N, kConsumers, kCluster, 2>(p, stream);
  }
  launch_gemv_pipelined_drained<N, kConsumers, kCluster, 1>(p, stream);
}

// FP4LLM_WGMMA_PIPELINE_SHAPE=C,Z (comparisons): C consumer warpgroups (2 or 3) in clusters of Z
// (1, 2 or 4) for every product, instead of pipelined_gemv_shape's choice.
template <int N>
void launch_gemv_pipelined(const GemvArgs& p, cudaStream_t stream) {
  static const auto forced = knob_pair("FP4LLM_WGMMA_PIPELINE_SHAPE", {0, 0});
  PipelinedGemvShape shape{forced.first, forced.second};
  if (forced.first == 0)
    shape = pipelined_gemv_shape(p.row_tiles, p.k_chunks, pipeline_cluster_capacity<N>(), PipelineLayout<N, 3>::kStageChunks);
  else if ((shape.consumers != 2 && shape.consumers != 3) || (shape.cluster != 1 && shape.cluster != 2 && shape.cluster != 4))
    throw_error("FP4LLM_WGMMA_PIPELINE_SHAPE: 2 or 3 consumer warpgroups in clusters of 1, 2 or 4 (\"3,1\")");
  const auto with_cluster = [&]<int kConsumers>() {
    if (shape.cluster == 4) return launch_gemv_pipelined_with<N, kConsumers, 4>(p, stream);
    if (shape.cluster == 2) return launch_gemv_pipelined_with<N, kConsumers, 2>(p, stream);
    launch_gemv_pipelined_with<N, kConsumers, 1>(p, stream);
  };
  if (shape.consumers == 3) with_cluster.template operator()<3>();
  else with_cluster.template operator()<2>();
}

// The default wgmma kernel for `blocks` row blocks of 64, in launch_gemv_wgmma's order: `size` is
// the row blocks a block (shared x) or the blocks a cluster (shared-x clusters).
struct WgmmaChoice {
  enum Kind { shared_x, shared_x_cluster, cluster, wide_cluster, plain } kind;
  int size = 0;
  bool clustered() const { return kind == shared_x_cluster || kind == cluster || kind == wide_cluster; }
};

WgmmaChoice wgmma_choice(unsigned blocks, unsigned sms) {
  if (const int share = wgmma_share_x(blocks)) return {WgmmaChoice::shared_x, share};
  if (const int cluster = wgmma_shared_x_cluster(blocks, sms)) return {WgmmaChoice::shared_x_cluster, cluster};
  if (wgmma_cluster_requested() && 2 * blocks <= sms) return {WgmmaChoice::cluster};
  if (wgmma_wide_clusters_requested() && blocks < sms) return {WgmmaChoice::wide_cluster};
  return {WgmmaChoice::plain};
}

// Blocks of 64 rows; four warpgroups share a block's K where the blocks are fewer than the SMs
// (o_proj, down_proj, qkv), two otherwise.
template <int N>
void launch_gemv_wgmma(const GemvArgs& p, cudaStream_t stream) {
  constexpr bool kPipelined = N == 64 || N == 32;  // the pipelined kernel takes 64 tokens, or 32
  const bool pipelined = N == 64 || pipeline_n32_requested();
  if constexpr (kPipelined) {
    if (pipelined && wgmma_pipeline_requested()) return launch_gemv_pipelined<N>(p, stream);
  }
  const unsigned blocks = wgmma_blocks(p), sms = device_sms();
  const WgmmaChoice choice = wgmma_choice(blocks, sms);
  if constexpr (kPipelined) {
    const bool unclustered = p.pipeline_unclustered && !choice.clustered();
    const bool plain = wgmma_pipeline_plain_only() && choice.kind == WgmmaChoice::plain;
    if (pipelined && (unclustered || plain)) return launch_gemv_pipelined<N>(p, stream);
  }
  switch (choice.kind) {
    case WgmmaChoice::shared_x:
      if (choice.size == 4) return launch_wgmma_shared_x<N, 4>(p, blocks, stream);
      if (choice.size == 3) return launch_wgmma_shared_x<N, 3>(p, blocks, stream);
      return launch_wgmma_shared_x<N, 2>(p, blocks, stream);
    case WgmmaChoice::shared_x_cluster:
      if (choice.size == 4) return launch_wgmma_shared_x<N, 2, 4>(p, blocks, stream);
      return launch_wgmma_shared_x<N, 2, 2>(p, blocks, stream);
    case WgmmaChoice::cluster: return launch_wgmma_groups<N, 4, 2>(p, blocks, stream);
    case WgmmaChoice::wide_cluster: return launch_wgmma_groups<N, 2, 2>(p, blocks, stream);
    case WgmmaChoice::plain: break;
  }
  if (blocks < sms) launch_wgmma_groups<N, 4>(p, blocks, stream);
  else launch_wgmma_groups<N, 2>(p, blocks, stream);
}

// Expert groups of prefill steps (more than 64 rows) on warpgroup MMAs (sm_90), 64 weight rows x
// 64 routed rows a block, each block looping over kExpertSliceBlocks-strided slices of its group
// (nvfp4_experts_wgmma_kernel), instead of the copy ring, whose every warp re-reads x for all 64
// rows of a slice: a 2,048-token Qwen3-30B-A3B prompt 113.9 against 153.4 ms (H100, 2026-12-06,
// same call). FP4LLM_EXPERTS_WGMMA=0 keeps the ring.
bool experts_wgmma_requested() {
  static const bool on = !knob_is("FP4LLM_EXPERTS_WGMMA", "0") && device_is_sm90_or_later();
  return on;
}

constexpr int64_t kExpertSliceBlocks = 4;

void launch_experts_wgmma(const GemvArgs& p, unsigned groups, int64_t rows, cudaStream_t stream) {
  constexpr int smem = wgmma_smem_bytes(1);
  allow_dynamic_smem<nvfp4_experts_wgmma_kernel<64>>(smem);
  const unsigned slices = unsigned(std::min(kExpertSliceBlocks, (rows + 63) / 64));
  launch_dependent(early_launch_products(), nvfp4_experts_wgmma_kernel<64>, dim3(slices, groups, wgmma_blocks(p)), dim3(128),
                   smem, stream, p);
}

// Up to 16 rows go to the register-pipelined kernel (measured on the H200, 2026-12-04: Qwen3-8B's
// four projections 57.2 against 66.5 us per layer at batch 1, 65.5 against 81.0 at batch 16;
// Qwen3-30B-A3B's expert groups 304.3 against 301.2 tok/s at batch 1, 1,887 against 1,783 at 16),
// more to the copy ring, and for more than 64 rows (expert groups only) slices of 64 over grid z.
// Plain products of 17-64 rows on sm_90 take warpgroup MMAs instead of the ring. 33-64 measured
// on the H100, 2026-12-05, same call: Qwen3-8B 5,704 against 5,073 tok/s at batch 64, Gemma3-27B
// 2,115 against 1,612 (at 16 and 32 rows they then lost). 17-32 since the shared-x kernel's
// wide stages and overlapped chunks (H100, 2026-12-07, same calls): Qwen3-8B at batch 24 4,393
// -> 5,060, at 32 5,220 -> 6,200; Gemma3-27B at 32 1,808 -> 1,862; Qwen3-30B-A3B (attention
// products only) at 32 3,232 -> 3,185. At 16 rows they still lose to the direct kernel: 4,842 ->
// 3,856 (norm kernels in both). FP4LLM_GEMV_KERNEL=ring keeps every product on the copy ring
// (tests, comparisons), =ring32 17-32 rows on it as before; =wgmma puts plain products of 9-64
// rows on warpgroup MMAs.
bool takes_wgmma(const GemvArgs& p, int64_t rows, bool ring_only) {
  static const bool sm90 = device_is_sm90_or_later();
  static const bool ring32 = knob_is("FP4LLM_GEMV_KERNEL", "ring32");
  if (ring_only || !sm90) return false;
  return rows > (ring32 ? 32 : 16) || (rows > 8 && wgmma_requested() && wgmma_fills_the_gpu(p));
}

// Expert groups of 17-64 possible rows (decode steps of 17-64 tokens) on the direct kernel in
// slices of 16 rows instead of the copy ring sized for all of them: at batch 64 of Qwen3-30B-A3B a
// group holds 3 or 4 rows, so most slices exit at once and the rest run the lean loop of one
// token group (two without the skip above) instead of the ring's 8. Measured 2,817 -> 5,008 tok/s
// there (H100, 2026-12-06, same call). FP4LLM_EXPERTS_DIRECT=0 keeps the ring.
bool experts_direct_requested() {
  static const bool on = !knob_is("FP4LLM_EXPERTS_DIRECT", "0");
  return on;
}

// Expert groups of 9-64 possible rows (decode steps of 9-64 tokens) on the one-token-group direct
// kernel, each block walking its group's rows 8 at a time (kSliceLoop), instead of the two-group
// kernel (80 registers, 3 blocks a SM) over 16-row slices: at batch 16 of Qwen3-30B-A3B an expert
// holds 1 to 5 rows, so almost every block runs one slice, and a fourth block a SM puts a third
// more weight bytes in flight. Measured 2,234 -> 2,340 tok/s at batch 16 and 5,006 -> 5,662 at
// batch 64 (H100, 2026-12-07, same call). FP4LLM_EXPERTS_SLICE_LOOP=0: the two-group kernel.
bool experts_slice_loop_requested() {
  static const bool on = !knob_is("FP4LLM_EXPERTS_SLICE_LOOP", "0");
  return on;
}

void launch_experts_slice_loop(const GemvArgs& p, unsigned groups, cudaStream_t stream) {
  launch_dependent(true, nvfp4_gemv_direct_kernel<1, true, false, false, false, kWarps, true>, gemv_grid(p, groups, 1),
                   dim3(kWarps * 32), 0, stream, p);
}

template <bool kGrouped>
void launch_for_rows(const GemvArgs& p, int64_t rows, unsigned groups, cudaStream_t stream) {
  static const bool ring_only = knob_is("FP4LLM_GEMV_KERNEL", "ring");
  if constexpr (!kGrouped) {  // N: the rows padded to 16, 32 or 64 tokens
    if (takes_wgmma(p, rows, ring_only)) {
      if (rows <= 16) return launch_gemv_wgmma<16>(p, stream);
      if (rows <= 32) return launch_gemv_wgmma<32>(p, stream);
      return launch_gemv_wgmma<64>(p, stream);
    }
  }
  if constexpr (kGrouped) {
    if (!ring_only && rows > 64 && experts_wgmma_requested()) return launch_experts_wgmma(p, groups, rows, stream);
    if (!ring_only && rows > 8 && rows <= 64 && experts_slice_loop_requested()) return launch_experts_slice_loop(p, groups, stream);
  }
  if (!ring_only && rows <= 16) {
    if (rows <= 8) launch_gemv_direct<1, kGrouped>(p, groups, stream);
    else launch_gemv_direct<2, kGrouped>(p, groups, stream);
    return;
  }
  if constexpr (kGrouped) {
    if (!ring_only && experts_direct_requested())
      return launch_gemv_direct<2, kGrouped>(p, groups, stream, unsigned((rows + 15) / 16));
  }
  if (rows <= 8) launch_gemv<1, kGrouped>(p, groups, 1, stream);
  else if (rows <= 16) launch_gemv<2, kGrouped>(p, groups, 1, stream);
  else if (rows <= 32) launch_gemv<4, kGrouped>(p, groups, 1, stream);
  else launch_gemv<8, kGrouped>(p, groups, unsigned((rows + 63) / 64), stream);
}

// The weight, x and their shapes into p; `rows`: the rows of x, or for expert groups the most
// rows one group can hold. min_chunks: the fewest chunks a warp (0: min_chunks_per_warp's).
void bind(GemvArgs& p, const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows,
          int64_t min_chunks = 0) {
  const int splits = choose_splits(w.k_chunks, min_chunks > 0 ? min_chunks : min_chunks_per_warp(rows));
  p.packed = reinterpret_cast<const uint4*>(w.packed.data());
  p.scales = w.scales.data();
  p.tile_scales = w.tile_scales.data();
  p.x = x;
  p.rows = int(rows);
  p.n = int(w.out_features);
  p.k = int(w.in_features);
  p.k_chunks = int(w.k_chunks);
  p.row_tiles = int(w.row_tiles);
  set_splits(p, splits);
  p.expert_slots = size_t(w.row_tiles * w.k_chunks * 32);
  static const bool trigger_after_wait = knob_is("FP4LLM_PDL_TRIGGER", "after_wait");
  p.trigger_after_wait = trigger_after_wait;
  // FP4LLM_WGMMA_X_PREFETCH=1: the wgmma GEMV's x lines asked of L1 a stage early (at batch 64 the
  // stage barrier, where warps wait for x from L2, held 40% of the shared-x kernel's stall samples;
  // H100, 2026-12-07). Not yet measured, so off.
  static const bool x_prefetch = knob_is("FP4LLM_WGMMA_X_PREFETCH", "1");
  p.x_prefetch = x_prefetch;
  p.ring_bulk = wgmma_ring_bulk_requested();
}

// p's blocks ask L2 for w's bytes before they wait (the direct kernel; FP4LLM_L2_AHEAD): all of
// them, or with per_expert each block of a routed gate/up its share of its group's expert's
// (stacked experts' weights; l2_per_expert).
void ask_l2_for(GemvArgs& p, const DeviceNvfp4Linear& w, bool per_expert = false) {
  const int64_t slots = w.row_tiles * w.k_chunks * 32 * (per_expert ? 1 : std::max<int64_t>(1, w.experts));
  if (slots <= 0 || slots > int64_t(UINT32_MAX)) return;
  p.l2_packed = reinterpret_cast<const uint4*>(w.packed.data());
  p.l2_scales = w.scales.data();
  p.l2_slots = uint32_t(slots);
  p.l2_per_expert = per_expert;
}

void gemv(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, GemvArgs p, cudaStream_t stream,
          unsigned groups = 1) {
  bind(p, w, x, rows);
  if (own_weights_to_l2() && !p.group_offset) ask_l2_for(p, w);
  if (p.group_offset) launch_for_rows<true>(p, rows, groups, stream);
  else launch_for_rows<false>(p, rows, 1, stream);
}

// The direct kernel whatever the rows (up to 16): the deferred norm's epilogues need a block to
// hold whole tiles (gemv_deferred_norm.cuh).
void gemv_direct_only(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, GemvArgs p, cudaStream_t stream) {
  if (!deferred_norm_supported(rows))
    throw_error("NVFP4 linear with a deferred norm: " + std::to_string(rows) + " rows (1 to " +
                std::to_string(kMaxDeferredNormRows) + " are supported)");
  bind(p, w, x, rows);
  if (own_weights_to_l2()) ask_l2_for(p, w);
  if (rows <= 8) launch_gemv_direct<1, false>(p, 1, stream);
  else launch_gemv_direct<2, false>(p, 1, stream);
}

// The partial sums are one per 16-row tile of the product before, whose rows are this one's K.
void take_deferred_norm(GemvArgs& p, const DeviceNvfp4Linear& w, const DeferredNorm& norm) {
  if (!norm.sums || norm.parts != deferred_norm_parts(w.in_features))
    throw_error("NVFP4 linear with a deferred norm: the partial sums must hold one per 16 of its " +
                std::to_string(w.in_features) + " input features (given " + std::to_string(norm.parts) + ")");
  p.deferred_sums = norm.sums;
  p.deferred_parts = int(norm.parts);
  p.deferred_eps = norm.eps;
}

static_assert(kNormInRows == kMaxNormedRows);

// Fewest chunks per warp of a normalising launch: fewer, larger blocks, each normalising its rows
// once (gemv_norm_prologue.cuh). 8 measured best (H100, 2026-12-06, same call, Qwen3-30B-A3B at
// batch 1: 16 / 8 / 4 -> 403.8 / 411.0 / 406.5 tok/s; its qkv 80 / 160 / 320 blocks, 11.4 / 10.6 /
// 11.1 us a layer on the step's critical path). FP4LLM_NORMED_MIN_CHUNKS sets it, to compare.
int64_t normed_min_chunks() {
  static const int64_t chunks = std::max<int64_t>(1, knob_int("FP4LLM_NORMED_MIN_CHUNKS", 8));
  return chunks;
}

size_t normed_smem_bytes(int64_t rows, int64_t k) { return size_t(rows) * size_t(normed_row_stride(int(k))) * 2; }

// The direct kernel normalising its own input (gemv_norm_prologue.cuh).
void gemv_normed(const DeviceNvfp4Linear& w, const NormedInput& in, int64_t rows, GemvArgs p, cudaStream_t stream) {
  if (!normed_input_supported(rows, w.in_features))
    throw_error("NVFP4 linear with its input norm: " + std::to_string(rows) + " rows of " + std::to_string(w.in_features) +
                " features are not supported (up to " + std::to_string(kMaxNormedRows) +
                " rows, a multiple of 16 features, their BF16 copies within 48 KB)");
  if (in.delta_weights && (in.delta_w || in.delta_count < 1 || !in.delta || !in.store))
    throw_error("NVFP4 linear with its input norm: expert rows need their count, rows and a store, and take no norm gains");
  bind(p, w, nullptr, rows, normed_min_chunks());
  p.norm_x = in.residual;
  p.norm_w = in.weight;
  p.norm_eps = in.eps;
  p.norm_one_plus = in.one_plus;
  p.norm_delta = in.delta;
  p.norm_delta_w = in.delta_w;
  p.norm_store = in.store;
  p.norm_delta_weights = in.delta_weights;
  p.norm_delta_count = int(in.delta_count);
  const size_t smem = normed_smem_bytes(rows, w.in_features);
  allow_dynamic_smem<nvfp4_gemv_direct_kernel<1, false, true>>(int(smem));
  launch_dependent(early_launch_products(), nvfp4_gemv_direct_kernel<1, false, true>, gemv_grid(p, 1, 1), dim3(kWarps * 32),
                   smem, stream, p);
}

void set_groups(GemvArgs& p, const ExpertRows& r) {
  p.group_expert = r.group_expert;
  p.group_offset = r.group_offset;
  p.num_groups = r.num_groups;
}

DeviceNvfp4Linear shaped_like(const Nvfp4Tiles& tiles) {
  DeviceNvfp4Linear d;
  d.out_features = tiles.out_features;
  d.in_features = tiles.in_features;
  d.row_tiles = tiles.row_tiles;
  d.k_chunks = tiles.k_chunks;
  d.gated = tiles.gated;
  return d;
}

}  // namespace

int64_t prefill_scratch_elements(const DeviceNvfp4Linear& w) {
  const int64_t whole = w.row_tiles * 16 * w.k_chunks * 64;
  if (whole == 0) return 0;
  if (fp8_prefill_enabled()) return (whole + 1) / 2;
  return std::min(whole, tiles_per_slice(w) * 16 * w.k_chunks * 64);
}

DeviceNvfp4Linear upload_nvfp4(const Nvfp4Tiles& tiles) {
  DeviceNvfp4Linear d = shaped_like(tiles);
  d.packed = DeviceBuffer<uint8_t>::from_host(tiles.packed);
  d.scales = DeviceBuffer<uint16_t>::from_host(tiles.scales);
  d.tile_scales = DeviceBuffer<float>::from_host(tiles.tile_scales);
  return d;
}

DeviceNvfp4Linear allocate_experts(const Nvfp4Tiles& first, int64_t experts) {
  DeviceNvfp4Linear d = shaped_like(first);
  d.experts = experts;
  d.packed = DeviceBuffer<uint8_t>(first.packed.size() * size_t(experts));
  d.scales = DeviceBuffer<uint16_t>(first.scales.size() * size_t(experts));
  d.tile_scales = DeviceBuffer<float>(first.tile_scales.size() * size_t(experts));
  upload_expert(d, 0, first);
  return d;
}

void upload_expert(DeviceNvfp4Linear& d, int64_t expert, const Nvfp4Tiles& t) {
  if (expert < 0 || expert >= d.experts || t.row_tiles != d.row_tiles || t.k_chunks != d.k_chunks ||
      t.gated != d.gated || t.out_features != d.out_features)
    throw_error("NVFP4 experts: expert " + std::to_string(expert) + " does not have the shape of expert 0");
  const auto put = [&](auto* base, const auto& host) {
    const size_t n = host.size();
    FP4LLM_CUDA_CHECK(cudaMemcpy(base + n * size_t(expert), host.data(), n * sizeof(host[0]), cudaMemcpyHostToDevice));
  };
  put(d.packed.data(), t.packed);
  put(d.scales.data(), t.scales);
  put(d.tile_scales.data(), t.tile_scales);
}

uint64_t gemv_scratch_bytes() {
  const LaidOutX& laid = laid_out_slot();
  const std::lock_guard lock(laid_out_mutex);
  uint64_t bytes = 0;
  for (const uint8_t* b : {laid.buffers[0], laid.buffers[1], laid.normed, laid.act})
    if (b) bytes += kLaidOutBytes;
  return bytes;
}

bool pipelined_gemv_default(bool moe) {
  if (!device_is_sm90_or_later()) return false;
  return wgmma_pipeline_unclustered() || (knob_text("FP4LLM_WGMMA_PIPELINE").empty() && !moe);
}

void prepare_gemv_scratch(const LinearWorkspace& ws) {
  if (wgmma_pipeline_layout_requested() || wgmma_pipeline_tma_requested() || ws.pipeline_unclustered)
    laid_out_x(layout_written_requested() || ws.pipeline_unclustered);
}

void nvfp4_linear(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y,
                  LinearWorkspace& ws, cudaStream_t stream, LinearOutput mode) {
  const uint8_t* laid_out = take_laid_out(ws, x, rows);
  if (rows <= 0) return;
  if (w.gated) throw_error("NVFP4 linear: gated tiles go through nvfp4_gated");
  if (rows > kMaxDecodeRows) return dequantized_gemm(w, x, rows, y, mode == LinearOutput::Add ? 1.0f : 0.0f, ws, stream);
  GemvArgs p{};
  p.x_laid_out = laid_out;
  p.pipeline_unclustered = ws.pipeline_unclustered;
  p.epilogue = mode == LinearOutput::Add ? kAdd : kStore;
  p.y = y;
  gemv(w, x, rows, p, stream);
}

bool normed_input_supported(int64_t rows, int64_t in_features) {
  return rows >= 1 && rows <= kMaxNormedRows && in_features % 16 == 0 && normed_smem_bytes(rows, in_features) <= 48 * 1024;
}

void nvfp4_linear_normed(const DeviceNvfp4Linear& w, const NormedInput& x, int64_t rows, float* y, cudaStream_t stream,
                         LinearOutput mode) {
  if (w.gated) throw_error("NVFP4 linear: gated tiles go through nvfp4_gated_normed");
  GemvArgs p{};
  p.epilogue = mode == LinearOutput::Add ? kAdd : kStore;
  p.y = y;
  gemv_normed(w, x, rows, p, stream);
}

void nvfp4_gated_normed(const DeviceNvfp4Linear& w, const NormedInput& x, int64_t rows, bool gelu, __nv_bfloat16* out,
                        cudaStream_t stream) {
  if (!w.gated) throw_error("NVFP4 gated linear: the weight is not in the gated tile layout");
  GemvArgs p{};
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  gemv_normed(w, x, rows, p, stream);
}

int64_t deferred_norm_parts(const DeviceNvfp4Linear& first) { return deferred_norm_parts(first.out_features); }

bool deferred_norm_supported(int64_t rows) { return rows >= 1 && rows <= kMaxDeferredNormRows; }

void nvfp4_linear_add_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* residual,
                                    const float* gain, const DeferredNorm& norm, __nv_bfloat16* scaled,
                                    cudaStream_t stream) {
  if (w.gated) throw_error("NVFP4 linear with a deferred norm: gated tiles cannot add to the residual stream");
  if (!norm.sums || norm.parts != w.row_tiles || !gain || !scaled)
    throw_error("NVFP4 linear with a deferred norm: the partial sums must hold one per 16-row tile (" +
                std::to_string(w.row_tiles) + " a row), with the gains and the scaled rows' buffer");
  GemvArgs p{};
  p.epilogue = kAddNorm;
  p.y = residual;
  p.deferred_gain = gain;
  p.deferred_x = scaled;
  p.deferred_sums_out = norm.sums;
  gemv_direct_only(w, x, rows, p, stream);
}

void nvfp4_linear_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* scaled, int64_t rows, float* y,
                                const DeferredNorm& norm, cudaStream_t stream) {
  if (w.gated) throw_error("NVFP4 linear: gated tiles go through nvfp4_gated_deferred_norm");
  GemvArgs p{};
  p.epilogue = kStore;
  p.y = y;
  take_deferred_norm(p, w, norm);
  gemv_direct_only(w, scaled, rows, p, stream);
}

void nvfp4_gated_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* scaled, int64_t rows, bool gelu,
                               __nv_bfloat16* out, const DeferredNorm& norm, cudaStream_t stream) {
  if (!w.gated) throw_error("NVFP4 gated linear: the weight is not in the gated tile layout");
  GemvArgs p{};
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  take_deferred_norm(p, w, norm);
  gemv_direct_only(w, scaled, rows, p, stream);
}

void nvfp4_linear_residual(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* product,
                           const ResidualNorm& r, LinearWorkspace& ws, cudaStream_t stream) {
  if (rows <= 0) return;
  nvfp4_linear(w, x, rows, r.post_w ? product : r.residual, ws, stream, r.post_w ? LinearOutput::Store : LinearOutput::Add);
  uint8_t* laid_out = r.next_reads_normed && writes_laid_out(ws, rows, w.out_features) ? laid_out_x(true).normed : nullptr;
  add_and_norm(r.residual, r.post_w ? product : nullptr, r.post_w, r.next_w, rows, NormParams{w.out_features, r.eps, r.one_plus},
               r.normed, stream, laid_out);
  if (laid_out) ws.next_input = {r.normed, rows, laid_out};
}

void nvfp4_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, bool gelu,
                 __nv_bfloat16* out, float* scratch, LinearWorkspace& ws, cudaStream_t stream) {
  const uint8_t* laid_out = take_laid_out(ws, x, rows);
  if (rows <= 0) return;
  if (!w.gated) throw_error("NVFP4 gated linear: the weight is not in the gated tile layout");
  if (rows > kMaxDecodeRows) {
    if (!scratch) throw_error("NVFP4 gated linear: more than 64 rows need a scratch buffer");
    if (prefill_gated_bf16()) return gated_prefill(w, x, rows, reinterpret_cast<__nv_bfloat16*>(scratch), gelu, out, ws, stream);
    return gated_prefill(w, x, rows, scratch, gelu, out, ws, stream);
  }
  GemvArgs p{};
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  p.x_laid_out = laid_out;
  p.pipeline_unclustered = ws.pipeline_unclustered;
  if (writes_laid_out(ws, rows, w.out_features / 2)) p.act_laid_out = laid_out_x(true).act;
  gemv(w, x, rows, p, stream);
  if (p.act_laid_out) ws.next_input = {out, rows, p.act_laid_out};
}

void nvfp4_experts_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, const ExpertRows& r, bool gelu,
                         __nv_bfloat16* out, cudaStream_t stream, const DeferredNorm* deferred) {
  if (!w.gated) throw_error("NVFP4 expert gate/up: the weights are not in the gated tile layout");
  if (r.max_rows <= 0 || r.max_groups <= 0) return;
  GemvArgs p{};
  set_groups(p, r);
  p.x_rows = r.row_token;
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  if (!deferred) return gemv(w, x, r.max_rows, p, stream, unsigned(r.max_groups));
  // The deferred norm's scale is the direct kernel's (gemv_deferred_norm.cuh), whatever the knobs.
  if (r.max_rows > 8)
    throw_error("NVFP4 expert gate/up with a deferred norm: " + std::to_string(r.max_rows) + " tokens (1 to 8 are supported)");
  take_deferred_norm(p, w, *deferred);
  bind(p, w, x, r.max_rows);
  launch_gemv_direct<1, true>(p, unsigned(r.max_groups), stream);
}

bool routing_in_experts_supported(int64_t tokens, const RouterShape& s) {
  return tokens >= 1 && tokens * s.top_k <= kMaxRoutedInBlock && s.first_expert == 0 && s.local() == s.experts;
}

void nvfp4_experts_gated_routed(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t tokens,
                                const RouterShape& shape, const Routing& out, bool gelu, __nv_bfloat16* act,
                                cudaStream_t stream, const DeviceNvfp4Linear* l2_down, const DeferredNorm* deferred) {
  if (!w.gated) throw_error("NVFP4 expert gate/up: the weights are not in the gated tile layout");
  if (!routing_in_experts_supported(tokens, shape))
    throw_error("NVFP4 expert gate/up routing its own rows: " + std::to_string(tokens) + " tokens of top-" +
                std::to_string(shape.top_k) + " (at most " + std::to_string(kMaxRoutedInBlock) +
                " routed rows, every expert on this GPU)");
  GemvArgs p{};
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = act;
  p.route_logits = out.logits;
  p.route_tokens = int(tokens);
  p.route_experts = int(shape.experts);
  p.route_top_k = int(shape.top_k);
  p.route_norm_topk_prob = shape.norm_topk_prob;
  p.route_out = out;
  if (l2_down) ask_l2_for(p, *l2_down, /*per_expert=*/true);
  static const bool own_ahead = l2_ahead_requested("gate_up");
  p.l2_own_routed = own_ahead;
  if (deferred) take_deferred_norm(p, w, *deferred);
  bind(p, w, x, tokens);
  launch_gemv_direct<1, true, true>(p, unsigned(std::min(shape.experts, tokens * shape.top_k)), stream);
}

void nvfp4_experts_down(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r, float* y,
                        cudaStream_t stream, const DeviceNvfp4Linear* l2_next) {
  if (w.gated) throw_error("NVFP4 expert down projection: gated tiles go through nvfp4_experts_gated");
  if (r.max_rows <= 0 || r.max_groups <= 0) return;
  GemvArgs p{};
  if (l2_next) ask_l2_for(p, *l2_next);
  set_groups(p, r);
  p.y_rows = r.row_slot;
  p.epilogue = kStore;
  p.y = y;
  gemv(w, act, r.max_rows, p, stream, unsigned(r.max_groups));
}

void nvfp4_experts_down_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r,
                                      const ExpertSum& sum, const float* gain, const DeferredNorm& norm,
                                      __nv_bfloat16* scaled, cudaStream_t stream, const DeviceNvfp4Linear* l2_next) {
  if (w.gated) throw_error("NVFP4 expert down projection: gated tiles go through nvfp4_experts_gated");
  static_assert(kMaxCombinedExperts == kWarps);
  if (r.max_rows != 1 || sum.top_k < 1 || sum.top_k > kMaxCombinedExperts)
    throw_error("NVFP4 expert down projection with a deferred norm: one token of 1 to " + std::to_string(kMaxCombinedExperts) +
                " experts (given " + std::to_string(r.max_rows) + " tokens, top-" + std::to_string(sum.top_k) + ")");
  if (!norm.sums || norm.parts != w.row_tiles || !gain || !scaled || !sum.residual || !sum.weights)
    throw_error("NVFP4 expert down projection with a deferred norm: the partial sums must hold one per 16-row tile (" +
                std::to_string(w.row_tiles) + "), with the stream, the weights, the gains and the scaled row's buffer");
  GemvArgs p{};
  bind(p, w, act, 1);
  if (l2_next) ask_l2_for(p, *l2_next);
  set_groups(p, r);
  p.y_rows = r.row_slot;
  p.y = sum.residual;
  p.deferred_gain = gain;
  p.deferred_x = scaled;
  p.deferred_sums_out = norm.sums;
  launch_dependent(true, nvfp4_experts_down_combined_kernel, dim3(unsigned(w.row_tiles)), dim3(kWarps * 32), 0, stream, p,
                   CombinedDown{sum.weights, int(sum.top_k)});
}

void nvfp4_experts_down_combine(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r, float* y,
                                const ExpertCombine& c, cudaStream_t stream) {
  nvfp4_experts_down(w, act, r, y, stream);
  add_weighted_and_norm(c.residual, {y, c.weights, c.top_k}, c.next_w, r.max_rows, NormParams{w.out_features, c.eps, c.one_plus},
                        c.normed, stream);
}

void bf16_linear(const __nv_bfloat16* w, int64_t out_features, int64_t in_features,
                 const __nv_bfloat16* x, int64_t rows, float* y, LinearWorkspace& ws,
                 cudaStream_t stream) {
  gemm_bf16(ws.cublas, w, in_features, out_features, in_features, x, rows, y, CUDA_R_32F, out_features, 0.0f, stream);
}

}  // namespace fp4llm::cuda
