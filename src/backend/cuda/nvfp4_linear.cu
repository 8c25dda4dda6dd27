#include <string>

#include <algorithm>
#include <cstdlib>

#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/dequantize_tiles.cuh"
#include "backend/cuda/dynamic_smem.cuh"
#include "backend/cuda/launch_grid.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/nvfp4_gemv_bulk.cuh"
#include "backend/cuda/nvfp4_gemv_direct.cuh"
#include "backend/cuda/nvfp4_gemv_ring.cuh"
#include "backend/cuda/nvfp4_gemv_tiled.cuh"
#include "backend/cuda/nvfp4_linear.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

// Prefill of gated tiles: cuBLAS wrote both halves of every tile; pair them up.
__global__ void gated_rows_kernel(const float* y, int64_t rows, int64_t n, bool gelu, __nv_bfloat16* out) {
  const int64_t width = n / 2;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(rows * width); i += size_t(gridDim.x) * blockDim.x) {
    const size_t token = i / width, f = i % width;
    const float* row = y + token * n + f / 8 * 16 + f % 8;
    out[i] = __float2bfloat16_rn(gated_value(row[0], row[8], gelu));
  }
}

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

// K splits per tile (1, 2, 4 or 8 warps), as many as keep at least min_chunks_per_warp() chunks
// per warp: many short blocks fill the SMs in several waves, so the last wave's tail is small;
// measured on the H100 (2026-11-25) against fewer, longer items (docs/PERFORMANCE.md).
int choose_splits(int64_t k_chunks, int64_t rows) {
  const int64_t min_chunks = min_chunks_per_warp(rows);
  int splits = 1;
  while (splits < kWarps && k_chunks / (2 * splits) >= min_chunks) splits *= 2;
  return splits;
}

// Every GEMV kernel's grid: blocks of kWarps / splits tiles over the row tiles; y and z run over
// expert groups and 64-row slices of them.
dim3 gemv_grid(const GemvArgs& p, unsigned groups, unsigned slices) {
  const int tiles_per_block = kWarps / p.splits;
  return dim3(unsigned((p.row_tiles + tiles_per_block - 1) / tiles_per_block), groups, slices);
}

// The plain product and the expert-grouped one are separate instantiations, so the plain one
// carries no index tables (registers) it does not use.
template <int NT, bool kGrouped>
void launch_gemv(const GemvArgs& p, unsigned groups, unsigned slices, cudaStream_t stream) {
  constexpr int kSmem = kWarps * sizeof(WarpRing);
  allow_dynamic_smem<nvfp4_gemv_kernel<NT, kGrouped>>(kSmem);
  launch_dependent(early_launch_all(), nvfp4_gemv_kernel<NT, kGrouped>, gemv_grid(p, groups, slices),
                   dim3(kWarps * 32), kSmem, stream, p);
}

// y [rows][ldy] (its first n columns) = or += x W^T for a BF16 W of n rows of stride ldw.
void gemm_bf16(cublasHandle_t h, const __nv_bfloat16* w, int64_t ldw, int64_t n, int64_t k,
               const __nv_bfloat16* x, int64_t rows, float* y, int64_t ldy, float beta, cudaStream_t stream) {
  const float one = 1.0f;
  FP4LLM_CUBLAS_CHECK(cublasSetStream(h, stream));
  FP4LLM_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(rows), int(k), &one, w,
                                   CUDA_R_16BF, int(ldw), x, CUDA_R_16BF, int(k), &beta, y,
                                   CUDA_R_32F, int(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// Prefill's BF16 scratch: slices of whole tiles up to this many values (64 MB), so that it does
// not grow with the largest matrix (Gemma 3 27B's gate_up: 462 MB whole; an NVFP4 lm_head of
// 262k rows: 2.8 GB). A slice of 8,192 rows at K = 4,096 keeps each GEMM large.
constexpr int64_t kScratchSliceElements = int64_t(32) << 20;

// FP4LLM_PREFILL_SLICE_ROWS=R (tests): slices of R rows (rounded down to whole tiles) instead.
int64_t tiles_per_slice(const DeviceNvfp4Linear& w) {
  static const int64_t rows = knob_int("FP4LLM_PREFILL_SLICE_ROWS", 0);
  const int64_t tiles = rows > 0 ? rows / 16 : kScratchSliceElements / (16 * w.k_chunks * 64);
  return std::clamp<int64_t>(tiles, 1, std::max<int64_t>(1, w.row_tiles));
}

// Rows above kMaxDecodeRows: the weight to BF16 scratch slice by slice, each multiplied by cuBLAS
// into its columns of y (y = or += x W^T); with FP4LLM_FP8_PREFILL=1 the whole weight and x to
// E4M3 and cuBLASLt FP8 (fp8_gemm.hpp).
void dequantized_gemm(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y, float beta,
                      LinearWorkspace& ws, cudaStream_t stream) {
  if (ws.dequantized.size() < size_t(prefill_scratch_elements(w))) throw_error("NVFP4 linear: dequantization scratch too small");
  if (fp8_prefill_enabled()) {  // E4M3 in the scratch's bytes (half of them), cuBLASLt FP8
    if (!ws.fp8) ws.fp8 = std::make_unique<Fp8Gemm>();
    ws.fp8->multiply(w, x, rows, y, beta, reinterpret_cast<uint8_t*>(ws.dequantized.data()), stream);
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
    gemm_bf16(ws.cublas, ws.dequantized.data(), ld, n, w.in_features, x, rows, y + first * 16, w.out_features, beta,
              stream);
  }
}

// FP4LLM_GEMV_L2_AHEAD=D: the lean loop's L2 run-ahead, D chunks (rounded up to its register
// groups) past its register loads (l2_run_ahead.cuh; not yet measured, so 0 = off by default).
int l2_run_ahead_chunks() {
  static const int chunks = int((std::clamp<int64_t>(knob_int("FP4LLM_GEMV_L2_AHEAD", 0), 0, 64) + kGroup - 1) / kGroup * kGroup);
  return chunks;
}

// The direct kernel's lean chunk loop (gemv_lean_loop.cuh), the default: measured on the H200
// (2026-12-05, same-call A/B, Qwen3-8B) 359.1 against 320.0 tok/s at batch 1 and 4,649 against
// 4,297 at 16. FP4LLM_GEMV_KERNEL=direct keeps the earlier loop (bounds checked per chunk);
// FP4LLM_GEMV_L2_AHEAD needs the lean loop, which carries its requests.
bool lean_loop() {
  static const bool on = !knob_is("FP4LLM_GEMV_KERNEL", "direct") || l2_run_ahead_chunks() > 0;
  return on;
}

template <int NT, bool kGrouped, class Epilogue = NoEpilogue>
void launch_gemv_direct(GemvArgs p, unsigned groups, unsigned slices, cudaStream_t stream,
                        const Epilogue& epilogue = {}) {
  // Early start measured on the H200 (2026-12-04, same-call A/B): Qwen3-30B-A3B's expert groups
  // 313.1 against 298.8 tok/s at batch 1, 1,910 against 1,872 at 16; Qwen3-8B's plain products
  // 333.3 against 334.2 at batch 1 and 4,382 against 4,556 at 16, so plain products launch plainly.
  const bool early = kGrouped || early_launch_all();
  p.l2_ahead = l2_run_ahead_chunks();
  if (lean_loop())
    launch_dependent(early, nvfp4_gemv_direct_kernel<NT, kGrouped, Epilogue, true>, gemv_grid(p, groups, slices),
                     dim3(kWarps * 32), 0, stream, p, epilogue);
  else
    launch_dependent(early, nvfp4_gemv_direct_kernel<NT, kGrouped, Epilogue>, gemv_grid(p, groups, slices),
                     dim3(kWarps * 32), 0, stream, p, epilogue);
}

template <int NT, bool kGrouped, class Epilogue = NoEpilogue>
void launch_gemv_bulk(const GemvArgs& p, unsigned groups, cudaStream_t stream, const Epilogue& epilogue = {}) {
  launch_dependent(kGrouped || early_launch_all(), nvfp4_gemv_bulk_kernel<NT, kGrouped, Epilogue>,
                   gemv_grid(p, groups, 1), dim3(kWarps * 32), 0, stream, p, epilogue);
}

// In-block K splits of the tiled kernel (FP4LLM_GEMV_TILED_SPLITS to compare): one when the
// matrix has tiles enough for about 100 blocks of 8 tiles, else 2 (twice the blocks, half the x
// sharing). Unmeasured defaults.
int tiled_splits(int64_t row_tiles, int64_t k_chunks) {
  static const int64_t knob = knob_int("FP4LLM_GEMV_TILED_SPLITS", 0);
  int64_t splits = knob > 0 ? knob : row_tiles >= 100 * kWarps ? 1 : 2;
  splits = std::min<int64_t>({splits, 4, k_chunks});
  return splits >= 4 ? 4 : splits >= 2 ? 2 : 1;
}

template <int NT, bool kGrouped, int kSplits>
void launch_tiled(const GemvArgs& p, unsigned groups, unsigned slices, size_t smem, cudaStream_t stream) {
  allow_dynamic_smem<nvfp4_gemv_tiled_kernel<NT, kGrouped, kSplits>>(int(smem));
  nvfp4_gemv_tiled_kernel<NT, kGrouped, kSplits><<<gemv_grid(p, groups, slices), kWarps * 32, smem, stream>>>(p);
}

template <int NT, bool kGrouped>
void launch_gemv_tiled(GemvArgs p, unsigned groups, unsigned slices, cudaStream_t stream) {
  p.splits = tiled_splits(p.row_tiles, p.k_chunks);
  // Each in-block split stages its own x: fewer splits where the GPU has less shared memory (Ada).
  const int limit = max_dynamic_smem();  // this device's (tensor-parallel ranks may differ)
  while (p.splits > 1 && tiled_smem_bytes(NT, p.splits) > size_t(limit)) p.splits /= 2;
  const size_t smem = tiled_smem_bytes(NT, p.splits);
  if (smem > size_t(limit))
    throw_error("NVFP4 linear: the tiled GEMV needs " + std::to_string(smem) + " bytes of shared memory per block; this GPU allows " +
                std::to_string(limit));
  p.chunks_per_split = (p.k_chunks + p.splits - 1) / p.splits;
  if (p.splits == 4) launch_tiled<NT, kGrouped, 4>(p, groups, slices, smem, stream);
  else if (p.splits == 2) launch_tiled<NT, kGrouped, 2>(p, groups, slices, smem, stream);
  else launch_tiled<NT, kGrouped, 1>(p, groups, slices, smem, stream);
  FP4LLM_CUDA_LAUNCHED();
}

// Up to 16 rows go to the register-pipelined kernel (measured on the H200, 2026-12-04: Qwen3-8B's
// four projections 57.2 against 66.5 us per layer at batch 1, 65.5 against 81.0 at batch 16;
// Qwen3-30B-A3B's expert groups 304.3 against 301.2 tok/s at batch 1, 1,887 against 1,783 at 16),
// more to the copy ring. FP4LLM_GEMV_KERNEL=ring keeps every product on the copy ring, =tiled
// puts 17-64 rows on the x-sharing kernel (nvfp4_gemv_tiled.cuh, not yet measured), to compare.
// =bulk puts up to 16 rows on the bulk-copy kernel (nvfp4_gemv_bulk.cuh, sm_90, not yet run);
// =lean keeps them on the direct kernel with its lean chunk loop (gemv_lean_loop.cuh, not yet run).
enum class GemvKernel { kDirect, kRing, kTiled, kBulk };
GemvKernel gemv_kernel(int64_t rows) {
  static const bool ring = knob_is("FP4LLM_GEMV_KERNEL", "ring"), tiled = knob_is("FP4LLM_GEMV_KERNEL", "tiled");
  static const bool bulk = knob_is("FP4LLM_GEMV_KERNEL", "bulk") && device_is_sm90_or_later();
  if (ring) return GemvKernel::kRing;
  if (rows <= 16) return bulk ? GemvKernel::kBulk : GemvKernel::kDirect;
  return tiled ? GemvKernel::kTiled : GemvKernel::kRing;
}

// The kernel instance for `rows` tokens (per group: the most one group can hold): 8-token groups
// per warp, and for more than 64 rows (expert groups only) slices of 64 over grid z.
template <bool kGrouped, class Epilogue = NoEpilogue>
void launch_for_rows(const GemvArgs& p, int64_t rows, unsigned groups, cudaStream_t stream, const Epilogue& epilogue = {}) {
  const GemvKernel kernel = gemv_kernel(rows);
  if (kernel == GemvKernel::kDirect) {
    if (rows <= 8) launch_gemv_direct<1, kGrouped>(p, groups, 1, stream, epilogue);
    else launch_gemv_direct<2, kGrouped>(p, groups, 1, stream, epilogue);
    return;
  }
  if (kernel == GemvKernel::kBulk) {
    if (rows <= 8) launch_gemv_bulk<1, kGrouped>(p, groups, stream, epilogue);
    else launch_gemv_bulk<2, kGrouped>(p, groups, stream, epilogue);
    return;
  }
  // Only the two kernels above take an epilogue (the callers check epilogue_applies()).
  if constexpr (Epilogue::kActive) throw_error("NVFP4 linear: a fused epilogue needs the direct or bulk decode kernel");
  if (kernel == GemvKernel::kTiled) {
    if (rows <= 32) launch_gemv_tiled<4, kGrouped>(p, groups, 1, stream);
    else launch_gemv_tiled<8, kGrouped>(p, groups, unsigned((rows + 63) / 64), stream);
    return;
  }
  if (rows <= 8) launch_gemv<1, kGrouped>(p, groups, 1, stream);
  else if (rows <= 16) launch_gemv<2, kGrouped>(p, groups, 1, stream);
  else if (rows <= 32) launch_gemv<4, kGrouped>(p, groups, 1, stream);
  else launch_gemv<8, kGrouped>(p, groups, unsigned((rows + 63) / 64), stream);
}

// `rows`: the rows of x, or for expert groups the most rows one group can hold.
template <class Epilogue = NoEpilogue>
void gemv(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, GemvArgs p, cudaStream_t stream,
          unsigned groups = 1, const Epilogue& epilogue = {}) {
  const int splits = choose_splits(w.k_chunks, rows);
  p.packed = reinterpret_cast<const uint4*>(w.packed.data());
  p.scales = w.scales.data();
  p.tile_scales = w.tile_scales.data();
  p.x = x;
  p.rows = int(rows);
  p.n = int(w.out_features);
  p.k = int(w.in_features);
  p.k_chunks = int(w.k_chunks);
  p.row_tiles = int(w.row_tiles);
  p.splits = splits;
  p.chunks_per_split = int((w.k_chunks + splits - 1) / splits);
  p.expert_slots = size_t(w.row_tiles * w.k_chunks * 32);
  if (p.group_offset) launch_for_rows<true>(p, rows, groups, stream, epilogue);
  else launch_for_rows<false>(p, rows, 1, stream, epilogue);
}

// An epilogue serves the rows the direct and bulk kernels take (up to 16).
bool epilogue_applies(int64_t rows) {
  const GemvKernel k = gemv_kernel(rows);
  return k == GemvKernel::kDirect || k == GemvKernel::kBulk;
}

// FP4LLM_FUSED_NORM=1 (not yet measured, so off by default).
bool fused_norm_applies(int64_t rows, int64_t n) {
  static const bool on = knob_is("FP4LLM_FUSED_NORM", "1");
  return on && n % 4 == 0 && epilogue_applies(rows);
}

void set_groups(GemvArgs& p, const ExpertRows& r) {
  p.group_expert = r.group_expert;
  p.group_offset = r.group_offset;
  p.num_groups = r.num_groups;
}

// y[row_slot[r]] = act[r] W_e^T for every routed row r (then the epilogue, if any).
template <class Epilogue = NoEpilogue>
void experts_down(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r, float* y,
                  cudaStream_t stream, const Epilogue& epilogue = {}) {
  if (w.gated) throw_error("NVFP4 expert down projection: gated tiles go through nvfp4_experts_gated");
  if (r.max_rows <= 0 || r.max_groups <= 0) return;
  GemvArgs p{};
  set_groups(p, r);
  p.y_rows = r.row_slot;
  p.epilogue = kStore;
  p.y = y;
  gemv(w, act, r.max_rows, p, stream, unsigned(r.max_groups), epilogue);
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

void nvfp4_linear(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y,
                  LinearWorkspace& ws, cudaStream_t stream, LinearOutput mode) {
  if (rows <= 0) return;
  if (w.gated) throw_error("NVFP4 linear: gated tiles go through nvfp4_gated");
  if (rows > kMaxDecodeRows) return dequantized_gemm(w, x, rows, y, mode == LinearOutput::Add ? 1.0f : 0.0f, ws, stream);
  GemvArgs p{};
  p.epilogue = mode == LinearOutput::Add ? kAdd : kStore;
  p.y = y;
  gemv(w, x, rows, p, stream);
}

void prepare_norm_counter(LinearWorkspace& ws) {
  if (ws.blocks_done.size()) return;
  ws.blocks_done = DeviceBuffer<unsigned int>::zeroed(1);
}

void nvfp4_linear_residual(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* product,
                           const ResidualNorm& r, LinearWorkspace& ws, cudaStream_t stream) {
  if (rows <= 0) return;
  if (w.gated) throw_error("NVFP4 linear: gated tiles go through nvfp4_gated");
  float* y = r.post_w ? product : r.residual;
  if (!fused_norm_applies(rows, w.out_features)) {
    nvfp4_linear(w, x, rows, y, ws, stream, r.post_w ? LinearOutput::Store : LinearOutput::Add);
    add_and_norm(r.residual, r.post_w ? product : nullptr, r.post_w, r.next_w, rows,
                 NormParams{w.out_features, r.eps, r.one_plus}, r.normed, stream);
    return;
  }
  if (!ws.blocks_done.size()) throw_error("NVFP4 linear with norm: the workspace has no counter (prepare_norm_counter)");
  if (!r.next_w || !r.normed) throw_error("NVFP4 linear with norm: no next norm weight or output given");
  GemvArgs p{};
  p.epilogue = r.post_w ? kStore : kAdd;
  p.y = y;
  gemv(w, x, rows, p, stream, 1,
       NormArgs{r.next_w, r.normed, ws.blocks_done.data(), r.post_w ? r.residual : nullptr, r.post_w, r.eps, r.one_plus});
}

void nvfp4_linear_rope(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* qkv,
                       const RopeCacheIo& io, const RopeCacheParams& params, unsigned int* head_done,
                       LinearWorkspace& ws, cudaStream_t stream) {
  if (w.out_features != (params.heads + 2 * params.kv_heads) * params.head_dim)
    throw_error("NVFP4 qkv linear: " + std::to_string(w.out_features) + " output rows, not (heads + 2 kv heads) x head_dim");
  const bool shapes = params.head_dim % 64 == 0 && params.head_dim <= 512;
  if (!shapes || !head_done || rows <= 0 || !epilogue_applies(rows)) {
    nvfp4_linear(w, x, rows, qkv, ws, stream);
    rope_and_cache(qkv, io.positions, io.slots, rows, io.q_norm, io.k_norm, io.inv_freq, params, io.q, io.k_cache,
                   io.v_cache, stream);
    return;
  }
  if (w.gated) throw_error("NVFP4 linear: gated tiles go through nvfp4_gated");
  GemvArgs p{};
  p.epilogue = kStore;
  p.y = qkv;
  gemv(w, x, rows, p, stream, 1, RopeArgs{params, io, head_done});
}

void nvfp4_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, bool gelu,
                 __nv_bfloat16* out, float* scratch, LinearWorkspace& ws, cudaStream_t stream) {
  if (rows <= 0) return;
  if (!w.gated) throw_error("NVFP4 gated linear: the weight is not in the gated tile layout");
  if (rows > kMaxDecodeRows) {
    if (!scratch) throw_error("NVFP4 gated linear: more than 64 rows need a scratch buffer");
    dequantized_gemm(w, x, rows, scratch, 0.0f, ws, stream);
    gated_rows_kernel<<<grid_for(rows * w.out_features / 2, 256), 256, 0, stream>>>(scratch, rows, w.out_features,
                                                                                    gelu, out);
    FP4LLM_CUDA_LAUNCHED();
    return;
  }
  GemvArgs p{};
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  gemv(w, x, rows, p, stream);
}

void nvfp4_experts_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, const ExpertRows& r, bool gelu,
                         __nv_bfloat16* out, cudaStream_t stream) {
  if (!w.gated) throw_error("NVFP4 expert gate/up: the weights are not in the gated tile layout");
  if (r.max_rows <= 0 || r.max_groups <= 0) return;
  GemvArgs p{};
  set_groups(p, r);
  p.x_rows = r.row_token;
  p.epilogue = gelu ? kGelu : kSilu;
  p.act = out;
  gemv(w, x, r.max_rows, p, stream, unsigned(r.max_groups));
}

void nvfp4_experts_down(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r, float* y,
                        cudaStream_t stream) {
  experts_down(w, act, r, y, stream);
}

void nvfp4_experts_down_combine(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r, float* y,
                                const ExpertCombine& c, cudaStream_t stream) {
  if (!fused_norm_applies(r.max_rows, w.out_features)) {
    experts_down(w, act, r, y, stream);
    add_weighted_and_norm(c.residual, {y, c.weights, c.top_k}, c.next_w, r.max_rows,
                          NormParams{w.out_features, c.eps, c.one_plus}, c.normed, stream);
    return;
  }
  if (!c.blocks_done || !c.next_w || !c.normed)
    throw_error("NVFP4 experts with norm: no counter, next norm weight or output given");
  experts_down(w, act, r, y, stream,
               NormArgs{c.next_w, c.normed, c.blocks_done, c.residual, nullptr, c.eps, c.one_plus, c.weights, int(c.top_k)});
}

void bf16_linear(const __nv_bfloat16* w, int64_t out_features, int64_t in_features,
                 const __nv_bfloat16* x, int64_t rows, float* y, LinearWorkspace& ws,
                 cudaStream_t stream) {
  gemm_bf16(ws.cublas, w, in_features, out_features, in_features, x, rows, y, out_features, 0.0f, stream);
}

}  // namespace fp4llm::cuda
