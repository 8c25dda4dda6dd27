// FP4LLM_FLASH_STAGGER=1 (not yet measured): the pipelined flash kernel
// (flash_prefill_pipelined.cuh) with two widened K/V stages, one barrier per key tile instead of
// two, and its warpgroups out of step. The pipelined kernel's block (16 warps at 4 heads, one a
// SM) moves in lockstep: all wait for the raw tile, all widen it, all wait again, then all compute
// its scores at once (the tensor cores busy, the special-function units idle), all take the
// softmax (the reverse), and all PV. Its 2,048-token prompt ran at 139 TFLOP/s (H100, twenty-fourth
// session) where the tensor cores' rate and the softmax's ex2s (16 a clock an SM), one after the
// other, allow about 400. Here tile j + 1 is widened into the other stage during tile j, by the
// odd warpgroups before their tile-j work and by the even ones after it: while the even
// warpgroups compute scores the odd ones widen, while the even take the softmax the odd compute
// scores, and so on, the two halves a phase apart (ping-pong between warpgroups). A tile's raw
// copies are requested two tiles ahead of the one attended (one iteration before their
// widening). Shared memory: Q planes, 2 x (K, V), 2 raw tiles (172 KB at head_dim 128, 4 heads,
// FP8 cache): one block a SM, as the pipelined kernel at 4 heads; at 1 and 2 heads also one (the
// pipelined kernel fits 3 and 2), and too much for Ada's 99 KB at head_dim 128.
#pragma once

#include "backend/cuda/flash_prefill_pipelined.cuh"

namespace fp4llm::cuda {

namespace {

template <int D, bool kFp8, int kHeads>
struct StaggeredTile : PipelinedTile<D, kFp8, kHeads> {
  using T = PipelinedTile<D, kFp8, kHeads>;
  static constexpr int kRawTile = 2 * T::kKeys * T::kRawRow;  // bytes of one raw tile (K and V rows)
  static constexpr int kSmemBytes = (kHeads + 4) * T::kPlane * 2 + 2 * kRawTile;
};

// Grid: flash_grid; 128 x kHeads threads. Tile j (keys lo + 64 j on) is widened into stage j % 2
// from raw buffer j % 2; its block-table entries are in buffer j % 2.
template <int D, bool kFp8, int kHeads = 1, bool kWgmma = false, bool kWgmmaPv = false>
__global__ void __launch_bounds__(128 * kHeads, 1) flash_staggered_kernel(FlashArgs a) {
  using T = StaggeredTile<D, kFp8, kHeads>;
  constexpr int kKeys = T::kKeys, kThreads = 128 * kHeads;
  extern __shared__ __align__(16) uint8_t smem[];
  uint16_t* const q_planes = reinterpret_cast<uint16_t*>(smem);
  uint16_t* const stages = q_planes + kHeads * T::kPlane;  // stage s: K at stages + 2s planes, V after it
  uint8_t* const raws = reinterpret_cast<uint8_t*>(stages + 4 * T::kPlane);
  __shared__ int32_t entries[2 * T::kTileBlocks];

  const FlashBlock b = flash_block(a, kHeads);
  const WarpRows& r = b.rows;
  const int last = r.last, lo = b.lo;
  const uint16_t* qs = q_planes + b.plane * T::kPlane;
  const int tiles = (last - lo) / kKeys + 1;
  auto entries_of = [&](int j) { return entries + (j % 2) * T::kTileBlocks; };
  auto raw_of = [&](int j) { return raws + (j % 2) * T::kRawTile; };
  auto keys_of = [&](int j) { return stages + (j % 2) * 2 * T::kPlane; };
  auto values_of = [&](int j) { return stages + (j % 2) * 2 * T::kPlane + T::kPlane; };

  // Tile 0's entries, waited for; tile 1's travel with tile 0's rows, tile 2's with tile 1's.
  request_entries<D, kFp8>(b.table, lo, last, entries_of(0));
  copy_async_commit();
  copy_async_wait<0>();
  __syncthreads();
  if (tiles > 1) request_entries<D, kFp8>(b.table, lo + kKeys, last, entries_of(1));
  request_keys<D, kFp8, kThreads, kWgmma>(a, entries_of(0), b.kv_head, lo, last, raw_of(0));
  copy_async_commit();
  stage_queries<D, kFp8, kHeads, kWgmma>(a, b.tile, b.first_head, q_planes);
  copy_async_wait<0>();
  __syncthreads();  // tile 0's rows and tile 1's entries are in; tile 0's entries no longer read
  if (tiles > 1) {
    if (tiles > 2) request_entries<D, kFp8>(b.table, lo + 2 * kKeys, last, entries_of(2));
    request_keys<D, kFp8, kThreads, kWgmma>(a, entries_of(1), b.kv_head, lo + kKeys, last, raw_of(1));
    copy_async_commit();
  }
  widen_keys<D, kFp8, kThreads, kWgmma, kWgmmaPv>(raw_of(0), keys_of(0), values_of(0));
  if constexpr (kWgmma) fence_shared_for_wgmma();  // Q and stage 0, read by the MMAs after the barrier

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  const bool widen_first = (int(threadIdx.x) / 128) % 2 == 1;

  for (int j = 0; j < tiles; ++j) {
    copy_async_wait<0>();
    // Stage j % 2 holds tile j; tile j + 1's rows and tile j + 2's entries have landed; every
    // thread is done with tile j - 1, so stage (j + 1) % 2, raw buffer j % 2 and entries
    // buffer (j + 1) % 2 (tile j + 1's, last read for its rows' requests) are free.
    __syncthreads();
    if (j + 2 < tiles) {
      if (j + 3 < tiles) request_entries<D, kFp8>(b.table, lo + (j + 3) * kKeys, last, entries_of(j + 3));
      request_keys<D, kFp8, kThreads, kWgmma>(a, entries_of(j + 2), b.kv_head, lo + (j + 2) * kKeys, last, raw_of(j + 2));
      copy_async_commit();
    }
    auto widen_next = [&] {
      if (j + 1 < tiles) widen_keys<D, kFp8, kThreads, kWgmma, kWgmmaPv>(raw_of(j + 1), keys_of(j + 1), values_of(j + 1));
    };
    // One copy of each piece of work, taken in the warpgroup's order: with the widening inlined
    // before and after, the 4-head kernel on warpgroup MMAs spilled 12 bytes at 128 registers
    // (none now; on mma.sync 28 instead of none).
#pragma unroll 1
    for (int phase = 0; phase < 2; ++phase) {
      if ((phase == 0) == widen_first) widen_next();
      else attend_tile<D, kFp8, kWgmma, kWgmmaPv>(a, r, qs, keys_of(j), values_of(j), lo + j * kKeys, m, l, o);
    }
    if constexpr (kWgmma) fence_shared_for_wgmma();  // stage (j + 1) % 2, read by the MMAs after the barrier
  }
  if (!r.has_rows) return;
  store_rows<D>(o, l, r.row0, r.t, b.tile.first_token, b.tile.count, a.p.heads, b.head, a.p.v_scale, a.out);
}

}  // namespace

}  // namespace fp4llm::cuda
