// The block shape of the pipelined wgmma GEMV (nvfp4_gemv_pipelined.cuh): how many consumer
// warpgroups (64 weight rows each) a block has, and how many blocks of a cluster split K. One
// block fits a SM (its stages take the shared memory), so the shape is the one whose blocks
// fill the SMs' waves best, K split only where the row blocks alone are fewer than the SMs; ties
// go to more rows a block (x read from L2 fewer times) and then to fewer K shares (fewer sums to
// add). A wave of clusters holds as many as the GPU can run at once, which a GPC whose SMs are
// not a multiple of the cluster size makes fewer than the SMs / size. Host-only, so that it is
// tested without a GPU.
#pragma once

#include <cstdint>

namespace fp4llm::cuda {

struct PipelinedGemvShape {
  int consumers = 3;  // warpgroups of 64 rows
  int cluster = 1;    // blocks splitting K
};

// Clusters of 1, 2 and 4 blocks that can run at once (cudaOccupancyMaxActiveClusters; `one` is
// the SMs, one block each).
struct ClusterCapacity {
  int64_t one = 0, two = 0, four = 0;
  int64_t of(int cluster) const { return cluster == 4 ? four : cluster == 2 ? two : one; }
};

// row_tiles: 16-row tiles of the weight; k_chunks: its 64-column chunks; stage_chunks: chunks a
// stage (each K share keeps at least two stages).
inline PipelinedGemvShape pipelined_gemv_shape(int64_t row_tiles, int64_t k_chunks, const ClusterCapacity& capacity,
                                               int stage_chunks) {
  PipelinedGemvShape best;
  double best_fill = -1.0;
  const int64_t sms = capacity.one;
  for (const int consumers : {3, 2})
    for (const int cluster : {1, 2, 4}) {
      const int64_t row_blocks = (row_tiles + 4 * consumers - 1) / (4 * consumers);
      // K is split only to reach SMs that the row blocks leave idle, not to even out later waves
      // (each block's pipeline fills and drains once, and each share adds a sum).
      if (cluster > 1 && (row_blocks >= sms || k_chunks < int64_t(cluster) * 2 * stage_chunks)) continue;
      const int64_t at_once = capacity.of(cluster);
      if (at_once <= 0) continue;
      const int64_t waves = (row_blocks + at_once - 1) / at_once;  // a row block is a cluster
      const double fill = double(row_blocks * cluster) / double(waves * sms);
      if (fill > best_fill + 1e-9) {
        best = {consumers, cluster};
        best_fill = fill;
      }
    }
  return best;
}

}  // namespace fp4llm::cuda
