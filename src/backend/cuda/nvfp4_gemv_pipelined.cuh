// The decode GEMV on warpgroup MMAs with a warpgroup that only moves bytes (FP4LLM_WGMMA_PIPELINE,
// products of 33-64 rows on sm_90, or 17-64 with FP4LLM_WGMMA_PIPELINE_N32; dense models' default
// where the other kernels run no clusters, docs/PERFORMANCE.md). Written against what the Nsight
// table of batch 64 showed of the wgmma kernels (10-28% of DRAM bandwidth, warps stalled on
// global loads 51-64% of the time, two chunks of weights in flight a warp): a block is kConsumers
// warpgroups that dequantize and multiply (64 weight rows each, as in nvfp4_gemv_wgmma.cuh, all on
// the same K range and x) and one producer warpgroup that keeps up to 5 stages ahead of them (by
// default): each stage's weights and x in the MMA's layout, announced on the stage's barrier. x
// comes laid out already (by x_to_mma_layout_kernel, or by the kernel that wrote it), or (=tma)
// by tensor copies into row-major staging, rewritten in the block (PipelineProducer). A stage
// holds 128 / N chunks. Consumers release a stage once its MMAs are done; the producer refills it.
//
// Bound, as measured: a warpgroup moving bytes by cp.async or 128-byte bulk copies stops near 19
// and 17 GB/s a SM whatever its depth, 16 KB bulk copies reach 85 (tools/l2_read_probe.cu, H100,
// 2026-12-07), hence these few, large copies. What is left (thirty-first session): the weights'
// copies alone and the consumers' work alone each take about 70% of a product's time, and they
// overlap little.
// Clusters of kCluster blocks split K, block 0 adding the others' sums through distributed shared
// memory (cluster_sum), so that products of few rows still fill the SMs.
#pragma once

#include <cooperative_groups.h>
#include <cuda.h>  // CUtensorMap

#include "backend/cuda/bulk_copy.cuh"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"
#include "backend/cuda/nvfp4_gemv_wgmma.cuh"
#include "backend/cuda/wgmma_bf16.cuh"

namespace fp4llm::cuda {

namespace {

// A block's shared memory: `stages` stages (x in the MMA layout, then each tile's packed words of
// the stage's chunks, then their scales), `raw` row-major x stages (=tma), the stages' barriers. The
// counts are GemvArgs::pipeline_stages and ::pipeline_raw_stages (the host checks they fit).
template <int N, int kConsumers>
struct PipelineLayout {
  static constexpr int kStageChunks = WgmmaShape<N>::kStageChunks;
  static constexpr int kTiles = 4 * kConsumers;  // 16-row tiles a block
  static constexpr int kXBytes = kWgmmaStageBytes;
  static constexpr int kPackedBytes = kTiles * kStageChunks * 512;
  static constexpr int kScaleBytes = kTiles * kStageChunks * 64;
  static constexpr int kStageBytes = kXBytes + kPackedBytes + kScaleBytes;
  // A tensor copy's box (=tma): N rows of one chunk's 64 columns, 128-byte swizzled.
  static constexpr int kBoxBytes = N * 128;
  // The row-major stages (=tma's boxes) start at the next 1,024-byte boundary (the swizzle's
  // period), and each is a multiple of it long; the barriers follow a kiB on, whatever the base's
  // alignment.
  static constexpr int kRawAlign = 1024;
  static constexpr int kRawBytes = (kStageChunks * kBoxBytes + kRawAlign - 1) / kRawAlign * kRawAlign;
  static_assert(kStageBytes % 128 == 0, "each stage's x starts 128-byte aligned");
  __host__ __device__ static constexpr int raw_offset(int stages) { return stages * kStageBytes; }
  __host__ __device__ static constexpr int barrier_offset(int stages, int raw) {
    return raw_offset(stages) + raw * kRawBytes + kRawAlign;
  }
  // Barriers: full and empty a stage, then full and empty a row-major stage.
  __host__ __device__ static constexpr int bytes(int stages, int raw) {
    return barrier_offset(stages, raw) + (2 * stages + 2 * raw) * 8;
  }
};

// The producer warpgroup's side (tid: 0-127 within it), every byte by bulk copies (l2_read_probe,
// H100: a SM pulls 85 GB/s from L2 by 16 KB bulk copies, 17 by 128-byte ones, 19 by a warpgroup's
// cp.async; the cp.async and 128-byte-bulk producers measured slower, thirtieth session, and are
// gone). Two ways, chosen at run time (GemvArgs::x_laid_out, else =tma): x laid out already, one
// copy a stage, and 2 x kTiles threads a tile's packed words or scales; or (=tma) a copier lane
// moving the weights and x by one tensor copy a chunk, and 96 threads rewriting x.
template <int N, int kConsumers>
struct PipelineProducer {
  using L = PipelineLayout<N, kConsumers>;
  static constexpr int S = L::kStageChunks;
  const GemvArgs& p;
  uint8_t* smem;
  uint64_t* full;
  uint64_t* raw_full;  // the row-major stages' barriers (bulk copies)
  const CUtensorMap* x_map;  // =tma: x as rows x k BF16, boxes of N rows x 64 columns
  int begin, end, first_tile, tid, stages_held, raw_held;  // the ring's stage counts

  // Stage s's slot (x in the MMA layout, then the weights) and its row-major x staging.
  __device__ __forceinline__ uint8_t* stage(int s) const { return smem + (s % stages_held) * L::kStageBytes; }
  __device__ __forceinline__ uint8_t* stage_weights(int s) const { return stage(s) + L::kXBytes; }
  __device__ __forceinline__ uint8_t* raw_stage(int s) const {
    const uint32_t offset = shared_address(smem + L::raw_offset(stages_held));
    const uint32_t aligned = (offset + L::kRawAlign - 1) & ~uint32_t(L::kRawAlign - 1);
    return smem + L::raw_offset(stages_held) + (aligned - offset) + (s % raw_held) * L::kRawBytes;
  }

  // Bytes of a tile's packed words or scales for `chunks` chunks.
  __device__ __forceinline__ static uint32_t tile_bytes(int chunks, bool scales) {
    return uint32_t(chunks * (scales ? 64 : 512));
  }

  // Tile lt's packed words or scales of stage s's chunks (from c0) into the stage, onto `done`.
  __device__ __forceinline__ void copy_tile(int s, int lt, int c0, int chunks, bool scales, uint64_t* done) const {
    const size_t slot = (size_t(first_tile + lt) * p.k_chunks + c0) * 32;
    if (scales) bulk_copy(stage_weights(s) + L::kPackedBytes + lt * S * 64, p.scales + slot, tile_bytes(chunks, true), done);
    else bulk_copy(stage_weights(s) + lt * S * 512, p.packed + slot, tile_bytes(chunks, false), done);
  }

  // Stage s's weights: mover 2 lt + 0 / 1 (of 2 x kTiles threads) moves tile lt's packed words /
  // scales of the stage's chunks, announcing their bytes (none past the last tile or the share) on
  // the stage's barrier.
  __device__ __forceinline__ void request_weights_bulk(int s, int mover) const {
    if (mover >= 2 * L::kTiles) return;
    uint64_t* done = full + s % stages_held;
    const int lt = mover / 2, c0 = begin + s * S, chunks = min(S, end - c0);
    const bool scales = mover % 2 == 1, ok = first_tile + lt < p.row_tiles && chunks > 0 && !(p.pipeline_ablate & 2);
    barrier_expect_bytes(done, ok ? tile_bytes(chunks, scales) : 0u);
    if (ok) copy_tile(s, lt, c0, chunks, scales, done);
  }

  // x laid out already (GemvArgs::x_laid_out): thread 0 moves a stage's x with one bulk copy and
  // threads 1 .. 2 x kTiles the weights, each announcing its bytes on the stage's barrier; nothing
  // is rewritten, so no generic store precedes the MMAs' reads.
  __device__ __forceinline__ void request_laid_out(int s) const {
    if (tid == 0) {
      uint64_t* done = full + s % stages_held;
      const int c0 = begin + s * S, chunks = min(S, end - c0);
      constexpr int kChunkBytes = WgmmaShape<N>::kChunkBytes;
      const bool copy = !(p.pipeline_ablate & 1);
      barrier_expect_bytes(done, copy ? uint32_t(chunks * kChunkBytes) : 0u);
      if (copy) bulk_copy(stage(s), p.x_laid_out + size_t(c0) * kChunkBytes, uint32_t(chunks * kChunkBytes), done);
    } else {
      request_weights_bulk(s, tid - 1);
    }
  }

  __device__ __forceinline__ void run_laid_out(int stages, uint64_t* empty) const {
    const int KS = stages_held;
    if (tid > 2 * L::kTiles) return;
    if (tid > 0)
      for (int s = 0; s < min(KS, stages); ++s) request_laid_out(s);
    wait_for_producer();  // x is the layout kernel's output
    if (tid == 0)
      for (int s = 0; s < min(KS, stages); ++s) request_laid_out(s);
    for (int s = KS; s < stages; ++s) {
      barrier_wait(empty + s % KS, uint32_t((s / KS - 1) & 1));  // the consumers are done with stage s - KS
      request_laid_out(s);
    }
  }

  // =tma: the producer's warp 0 moves every byte, from its lane 0 alone, and warps 1-3 only
  // rewrite x and release stages, so that no thread that fences its stores for the MMAs has
  // copies of its own in flight (written against =tma's first version, where the weights' threads
  // also rewrote x: 2.2 us a stage against =layout's 1.7, H100, 2026-12-07).
  static constexpr int kRewriters = 96;

  // Stage s's weights by the copier alone: one announcement of their bytes, then each tile's
  // packed words and scales (none past the last tile or the share).
  __device__ __forceinline__ void request_weights_copier(int s) const {
    uint64_t* done = full + s % stages_held;
    const int c0 = begin + s * S, chunks = min(S, end - c0);
    const int tiles = chunks > 0 && !(p.pipeline_ablate & 2) ? max(0, min(L::kTiles, p.row_tiles - first_tile)) : 0;
    barrier_expect_bytes(done, uint32_t(tiles) * (tile_bytes(chunks, false) + tile_bytes(chunks, true)));
    for (int lt = 0; lt < tiles; ++lt) {
      copy_tile(s, lt, c0, chunks, false, done);
      copy_tile(s, lt, c0, chunks, true, done);
    }
  }

  // Stage s's x, one box a chunk of the stage (none past the share's end), onto the row-major
  // stage's barrier.
  __device__ __forceinline__ void request_x_tma(int s) const {
    uint64_t* landed = raw_full + s % raw_held;
    const int c0 = begin + s * S, chunks = p.pipeline_ablate & 1 ? 0 : min(S, end - c0);
    barrier_expect_bytes(landed, uint32_t(max(chunks, 0) * L::kBoxBytes));
    for (int u = 0; u < chunks; ++u) tensor_copy_2d(raw_stage(s) + u * L::kBoxBytes, x_map, (c0 + u) * 64, 0, landed);
  }

  // (token, chunk) row `row` (0-127) of stage s from its swizzled box into the MMA layout. The
  // tensor copy puts a row's 16-byte piece j at piece j ^ (row % 8) of its 128 bytes; columns past
  // K and tokens past `rows` arrive as zeros; chunks past the share are zeros here.
  __device__ __forceinline__ void rewrite_x_tma(int s, int row) const {
    const int u = row / N, n = row % N, chunk = begin + s * S + u;
    const uint8_t* raw = raw_stage(s) + u * L::kBoxBytes + n * 128;
    XChunkRow x;
#pragma unroll
    for (int j = 0; j < 8; ++j)
      x.v[j] = chunk < end ? *reinterpret_cast<const uint4*>(raw + ((j ^ (n & 7)) * 16)) : make_uint4(0, 0, 0, 0);
    x.store<N>(stage(s) + u * WgmmaShape<N>::kChunkBytes, n);
  }

  // The copier: each slot refilled as soon as its readers released it (x: the rewriters; the
  // weights: the consumers).
  __device__ __forceinline__ void copy_tma(int stages, uint64_t* empty, uint64_t* raw_empty) const {
    const int KS = stages_held, DX = raw_held;
    for (int s = 0; s < min(KS, stages); ++s) request_weights_copier(s);
    wait_for_producer();  // weights are in flight; x is the producer kernel's output
    for (int s = 0; s < min(DX, stages); ++s) request_x_tma(s);
    for (int s = min(DX, KS); s < stages; ++s) {
      if (s >= DX) {
        barrier_wait(raw_empty + s % DX, uint32_t((s / DX - 1) & 1));
        request_x_tma(s);
      }
      if (s >= KS) {
        barrier_wait(empty + s % KS, uint32_t((s / KS - 1) & 1));
        request_weights_copier(s);
      }
    }
  }

  // The rewriters (r: 0-95): rows r and, for r < 32, 96 + r of every stage, each into its slot
  // once the consumers released it.
  __device__ __forceinline__ void rewrite_tma(int stages, uint64_t* empty, uint64_t* raw_empty, int r) const {
    const int KS = stages_held, DX = raw_held;
    for (int s = 0; s < stages; ++s) {
      if (s >= KS) barrier_wait(empty + s % KS, uint32_t((s / KS - 1) & 1));
      barrier_wait(raw_full + s % DX, uint32_t((s / DX) & 1));
      rewrite_x_tma(s, r);
      if (r + kRewriters < 128) rewrite_x_tma(s, r + kRewriters);
      fence_shared_for_wgmma();
      barrier_arrive(full + s % KS);
      barrier_arrive(raw_empty + s % DX);
    }
  }

  __device__ __forceinline__ void run_tma(int stages, uint64_t* empty) const {
    uint64_t* raw_empty = raw_full + raw_held;
    if (tid >= 32) return rewrite_tma(stages, empty, raw_empty, tid - 32);
    if (tid == 0) copy_tma(stages, empty, raw_empty);
  }

  __device__ __forceinline__ void run(int stages, uint64_t* empty) const {
    if (p.x_laid_out) return run_laid_out(stages, empty);
    run_tma(stages, empty);
  }
};

// A consumer warp's side: its tile's chunks of each stage dequantized and multiplied, two sets of
// A fragments so that a chunk's dequantization runs while the previous chunk's MMAs do. The MMAs
// are drained every kDrainStages stages (none in flight across the loop's back edge, where ptxas
// would serialize every MMA); within those, a stage is released to the producer once the next
// stage's first chunk is issued and the stage's own MMAs are done. kDrainStages > 1
// (FP4LLM_WGMMA_PIPELINE_DRAIN) keeps the tensor pipe fed across stage boundaries: written against
// the thirty-first session's ablation, where the consumers' work alone took 70% of a product's
// time, at 2 chunks a stage, and each drain left the tensor pipe idle while the next chunk was
// dequantized; measured slower (thirty-second session), so 1 by default.
template <int N, int kConsumers, int kDrainStages>
__device__ __forceinline__ void pipeline_consume(float (&acc)[N / 8][4], const uint8_t* smem, uint64_t* full,
                                                 uint64_t* empty, int stages, int KS, int n, int local_tile, bool live,
                                                 int lane, bool compute) {
  using L = PipelineLayout<N, kConsumers>;
  using Shape = WgmmaShape<N>;
  constexpr int S = L::kStageChunks;
  static_assert(S % 2 == 0, "chunk c uses fragments c % 2 = u % 2");
  const auto release = [&](int s) {
    __syncwarp();
    if (lane == 0) barrier_arrive(empty + s % KS);
  };
  uint32_t fragments[2][4][4];
  for (int s0 = 0; s0 < stages; s0 += kDrainStages) {
    int pending = -1;  // the stage whose MMAs may still be in flight
#pragma unroll
    for (int d = 0; d < kDrainStages; ++d) {
      const int s = s0 + d;
      if (s >= stages) break;  // uniform over the block
      const uint8_t* stage = smem + (s % KS) * L::kStageBytes;
      barrier_wait(full + s % KS, uint32_t((s / KS) & 1));
      if (!compute) {  // FP4LLM_WGMMA_PIPELINE_ABLATE=compute: the stage released untouched
        release(s);
        continue;
      }
      const uint64_t descriptor = wgmma_descriptor(stage, 128, 256);
#pragma unroll
      for (int u = 0; u < S; ++u) {
        if (s * S + u >= n) break;  // uniform over the block (every stage below `stages` has a chunk)
        uint32_t(&a)[4][4] = fragments[u % 2];
        uint4 w = make_uint4(0, 0, 0, 0);
        uint32_t scales = 0;
        if (live) {
          w = *reinterpret_cast<const uint4*>(stage + L::kXBytes + (local_tile * S + u) * 512 + lane * 16);
          scales = *reinterpret_cast<const uint16_t*>(stage + L::kXBytes + L::kPackedBytes + (local_tile * S + u) * 64 +
                                                      lane * 2);
        }
        dequant_chunk(w, scales, a);
        wgmma_pin(a);
        wgmma_pin(acc);
        wgmma_fence();
#pragma unroll
        for (int i = 0; i < 4; ++i)
          wgmma_64xNx16<N>(acc, a[i], descriptor + uint64_t((u * Shape::kChunkBytes + i * Shape::kStepBytes) >> 4));
        wgmma_commit();
        wgmma_wait<1>();  // the previous chunk's MMAs are done: its fragments may be rewritten
        wgmma_pin(acc);
        wgmma_pin(a);
        if (u == 0 && pending >= 0) {  // ... and so are the previous stage's
          release(pending);
          pending = -1;
        }
      }
      pending = s;
    }
    wgmma_wait<0>();
    wgmma_pin(acc);
    if (pending >= 0) release(pending);
  }
}

// x (rows x k BF16) into the MMA's layout for the pipelined kernel's laid-out path: chunk c at
// c x kChunkBytes, each (token, chunk) as XChunkRow stages it in shared memory (rows past `rows`
// repeat the last; columns past k are zeros). One thread a (token, chunk).
template <int N>
__global__ void __launch_bounds__(128) x_to_mma_layout_kernel(const __nv_bfloat16* x, int rows, int k, int k_chunks,
                                                             uint8_t* out) {
  let_dependents_start();
  wait_for_producer();  // x is the previous kernel's; `out` may still be read by the product two before
  const int i = int(blockIdx.x) * 128 + int(threadIdx.x), n = i % N, c = i / N;
  if (c >= k_chunks) return;
  XChunkRow row;
  row.load(x + size_t(min(n, rows - 1)) * k, c, k);
  row.store<N>(out + size_t(c) * WgmmaShape<N>::kChunkBytes, n);
}

// Every thread of the cluster's blocks meets here (clusters are sm_90's, as is this kernel).
__device__ __forceinline__ void cluster_barrier() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();
#else
  cooperative_groups::this_cluster().sync();
#endif
}

// Grid (row blocks of 64 x kConsumers rows, 1, kCluster); clusters of kCluster blocks along z
// split K (blockIdx.z is the rank). kDrainStages: pipeline_consume's.
template <int N, int kConsumers, int kCluster, int kDrainStages = 1>
__global__ void __launch_bounds__((kConsumers + 1) * 128, 1)
    nvfp4_gemv_pipelined_kernel(GemvArgs p, const __grid_constant__ CUtensorMap x_map) {
  using L = PipelineLayout<N, kConsumers>;
  extern __shared__ __align__(128) uint8_t pipeline_smem[];
  let_dependents_start();
  const int group = int(threadIdx.x) / 128, tid = int(threadIdx.x) % 128;
  const int rank = kCluster > 1 ? int(blockIdx.z) : 0;
  const int per_share = (p.k_chunks + kCluster - 1) / kCluster;
  const int begin = min(p.k_chunks, rank * per_share), end = min(p.k_chunks, begin + per_share), n = end - begin;
  const int stages = (n + L::kStageChunks - 1) / L::kStageChunks;
  const int first_tile = int(blockIdx.x) * L::kTiles;
  const int KS = p.pipeline_stages, DX = p.pipeline_raw_stages;
  uint64_t* full = reinterpret_cast<uint64_t*>(pipeline_smem + L::barrier_offset(KS, DX));
  uint64_t* empty = full + KS;
  uint64_t* raw_full = empty + KS;
  if (threadIdx.x == 0) {
    using Producer = PipelineProducer<N, kConsumers>;
    for (int i = 0; i < DX; ++i) {  // =tma's row-major stages
      barrier_init(raw_full + i, 1);                          // the copier's boxes
      barrier_init(raw_full + DX + i, Producer::kRewriters);  // the rewriters are done with it
    }
    for (int i = 0; i < KS; ++i) {
      // x's thread and the weights' threads (x laid out), or the copier and the rewriters (=tma).
      barrier_init(full + i, p.x_laid_out ? 1 + 2 * L::kTiles : 1 + Producer::kRewriters);
      barrier_init(empty + i, 4 * kConsumers);  // one lane a consumer warp
    }
    barrier_init_fence();
  }
  __syncthreads();

  const bool producer = group == kConsumers;
  const int warp = tid / 32, lane = tid % 32, g = lane >> 2, t = lane & 3;
  const int local_tile = group * 4 + warp, tile = first_tile + local_tile;
  const bool live = !producer && tile < p.row_tiles;
  float acc[N / 8][4] = {};
  if (producer) {
    PipelineProducer<N, kConsumers>{p, pipeline_smem, full, raw_full, &x_map, begin, end, first_tile, tid, KS, DX}.run(stages,
                                                                                                                empty);
  } else {
    wait_for_producer();  // the epilogue writes what earlier kernels may still read
    pipeline_consume<N, kConsumers, kDrainStages>(acc, pipeline_smem, full, empty, stages, KS, n, local_tile, live, lane,
                                    !(p.pipeline_ablate & 4));
  }
  if constexpr (kCluster > 1) {
    __syncthreads();  // every warpgroup's MMAs are done before the stages hold sums
    if (producer) {
      cluster_barrier();  // the two barriers of cluster_sum
      cluster_barrier();
    } else {
      cluster_sum<N, kCluster, true>(acc, reinterpret_cast<float*>(pipeline_smem), rank, group, tid);
    }
  }
  if (live && rank == 0) write_tile<N / 8, false>(p, Slice{p.packed, p.scales, p.tile_scales, 0, p.rows}, tile, g, t, acc);
}

}  // namespace

}  // namespace fp4llm::cuda
