// The x-sharing decode GEMV for 17-64 rows (FP4LLM_GEMV_KERNEL=tiled; not the default until it
// has been measured). At 64 rows the copy-ring kernel is bound by x, not by weights: every warp
// re-reads its K range of x for all rows from L2 (512 KB per 16-row tile at K = 4096, about 786
// MB per call for Qwen3-8B's gate_up against 57 MB of weights; docs/PERFORMANCE.md). Here a
// block of kWarps warps holds kWarps / S tiles and S in-block K splits, and every chunk of x the
// block needs is copied once into shared memory by all its threads, already in MMA fragment
// order (conflict-free 16-byte reads), and read by all the block's tiles: x traffic drops by the
// tiles per block. Weights and scales stream through a per-warp ring of cp.async copies; one
// block barrier per chunk keeps the warps in step with the shared x ring.
#pragma once

#include "backend/cuda/copy_async.cuh"
#include "backend/cuda/nvfp4_gemv_tile.cuh"

namespace fp4llm::cuda {

namespace {

constexpr int kTiledAhead = 4;                // chunks requested ahead of the arithmetic
constexpr int kTiledSlots = kTiledAhead + 1;  // the slot being read is never the one refilled

// Shared memory of one block, in uint4 units: per warp its weight slots, per warp its scale
// slots, then x fragments [slot][in-block split][NT * 2][32 lanes].
constexpr size_t kTiledWeightSlots = size_t(kWarps) * kTiledSlots * 32;
constexpr size_t kTiledScaleSlots = size_t(kWarps) * kTiledSlots * 32 * sizeof(uint16_t) / sizeof(uint4);
__host__ __device__ constexpr size_t tiled_smem_bytes(int nt, int splits) {
  return (kTiledWeightSlots + kTiledScaleSlots + size_t(kTiledSlots) * splits * nt * 2 * 32) * sizeof(uint4);
}

// This thread's share of copying x: piece q = threadIdx.x + i * blockDim.x (of NT * 64 per
// chunk) is row q / 8 of the slice, columns (q % 8) * 8 .. + 7 of the chunk, which lands in
// fragment (row / 8) * 2 + (q % 2) of lane (row % 8) * 4 + (q % 8) / 2.
template <int NT, bool kGrouped>
struct XPieces {
  static constexpr int kPerThread = NT * 64 / (kWarps * 32);
  const __nv_bfloat16* src[kPerThread];  // the piece's first column of chunk 0
  int column[kPerThread], fragment[kPerThread];

  __device__ __forceinline__ XPieces(const GemvArgs& p, const Slice& s) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int q = int(threadIdx.x) + i * kWarps * 32, row = q >> 3, piece = q & 7;
      const int r = min(row, s.rows - 1);  // rows past the slice: any valid row, never written out
      const int x_row = kGrouped && p.x_rows ? p.x_rows[s.begin + r] : s.begin + r;
      src[i] = p.x + size_t(x_row) * p.k + piece * 8;
      column[i] = piece * 8;
      fragment[i] = ((row >> 3) * 2 + (piece & 1)) * 32 + (row & 7) * 4 + (piece >> 1);
    }
  }

  // Chunk `chunk` (global index) into `dst` (one chunk's fragments); zeros past K.
  __device__ __forceinline__ void copy(uint4* dst, int chunk, int k) const {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int col = chunk * 64 + column[i];
      copy_async16_or_zero(dst + fragment[i], src[i] + (col < k ? size_t(chunk) * 64 : 0), col < k);
    }
  }
};

// kSplits: p.splits as a constant, so the x staging of each step is exactly that many copies
// per thread (with a runtime count the compiler kept code for more, about 40 instructions per
// chunk at 64 rows in the SASS).
template <int NT, bool kGrouped, int kSplits>
__global__ void __launch_bounds__(kWarps * 32) nvfp4_gemv_tiled_kernel(GemvArgs p) {
  Slice s;
  if (!block_slice<NT, kGrouped>(p, s)) return;  // uniform over the block, before any barrier
  const auto [lane, warp, g, t, tile, split, begin, end, live] = WorkItem(p);
  extern __shared__ uint4 dynamic_smem[];
  uint4* w_ring = dynamic_smem + size_t(warp) * kTiledSlots * 32;
  uint16_t* s_ring = reinterpret_cast<uint16_t*>(dynamic_smem + kTiledWeightSlots) + size_t(warp) * kTiledSlots * 32;
  uint4* x_ring = dynamic_smem + kTiledWeightSlots + kTiledScaleSlots;
  const size_t x_chunk = size_t(NT) * 2 * 32;  // uint4 per chunk of x fragments
  const uint4* wp = s.packed + size_t(tile) * p.k_chunks * 32;
  const uint16_t* sp = s.scales + size_t(tile) * p.k_chunks * 32;
  const XPieces<NT, kGrouped> pieces(p, s);
  const int steps = p.chunks_per_split;  // the same for every warp: they meet at each barrier
  const int own = end - begin;           // this warp's chunks (fewer for the last split, none if dead)

  // One commit group per step: this lane's weight and scale copies for its chunk `step` and this
  // thread's x pieces of chunk `step` of every in-block split.
  const auto issue = [&](int step) {
    const int slot = step % kTiledSlots;
    if (step < own) {
      copy_async16(w_ring + slot * 32 + lane, wp + size_t(begin + step) * 32 + lane);
      if (lane < 16) copy_async4(s_ring + slot * 32 + 2 * lane, sp + size_t(begin + step) * 32 + 2 * lane);
    }
#pragma unroll
    for (int j = 0; j < kSplits; ++j) {
      const int chunk = j * p.chunks_per_split + step;
      if (step < steps && chunk < p.k_chunks) pieces.copy(x_ring + (size_t(slot) * kSplits + j) * x_chunk, chunk, p.k);
    }
    copy_async_commit();
  };

  float acc[NT][4] = {};
#pragma unroll
  for (int a = 0; a < kTiledAhead; ++a) issue(a);
  for (int step = 0; step < steps; ++step) {
    copy_async_wait<kTiledAhead - 1>();  // this thread's copies of `step` have landed
    __syncthreads();                     // ... and everyone's; everyone is done with step - 1
    issue(step + kTiledAhead);           // into step - 1's slot
    if (step >= own) continue;
    const int slot = step % kTiledSlots;
    uint32_t a[4][4];
    dequant_chunk(w_ring[slot * 32 + lane], s_ring[slot * 32 + lane], a);
    const uint4* xf = x_ring + (size_t(slot) * kSplits + split) * x_chunk + lane;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) group_mma(acc[nt], a, xf[(2 * nt) * 32], xf[(2 * nt + 1) * 32]);
  }
  if (kSplits > 1) __syncthreads();  // every warp is done with the x ring, which now holds the partial sums
  static_assert(tiled_smem_bytes(NT, 1) - (kTiledWeightSlots + kTiledScaleSlots) * sizeof(uint4) >=
                    size_t(kWarps) * NT * 4 * 32 * sizeof(float),
                "the x ring must hold the split sums");
  if (!sum_splits<NT>(acc, kSplits, warp, split, lane, reinterpret_cast<float (*)[NT * 4][32]>(x_ring))) return;
  if (live) write_tile<NT, kGrouped>(p, s, tile, g, t, acc);
}

}  // namespace

}  // namespace fp4llm::cuda
