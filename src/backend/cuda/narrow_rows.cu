#include <string>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "backend/candidate_rows.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/narrow_rows.hpp"

namespace fp4llm::cuda {

namespace {

constexpr int kThreads = 512;

struct Larger {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// One block per row, written against the read of the row (600 KB for a 151,936-token vocabulary):
// one pass for the maximum, one over contiguous per-thread segments that counts the candidates,
// a block scan for each segment's place, and a pass (from L1/L2) that writes them in id order.
__global__ void __launch_bounds__(kThreads) narrow_kernel(const float* logits, int64_t vocab, const float* temperatures,
                                                         int capacity, int32_t* ids, float* values, int32_t* counts) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ union {
    typename Reduce::TempStorage reduce;
    typename Scan::TempStorage scan;
  } scratch;
  __shared__ float best;
  const float* row = logits + size_t(blockIdx.x) * vocab;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) m = fmaxf(m, row[i]);
  m = Reduce(scratch.reduce).Reduce(m, Larger{});
  if (threadIdx.x == 0) best = m;
  __syncthreads();
  const float cutoff = candidate_cutoff(best, temperatures[blockIdx.x]);
  const int64_t per = (vocab + kThreads - 1) / kThreads;
  const int64_t begin = min(vocab, int64_t(threadIdx.x) * per), end = min(vocab, begin + per);
  int mine = 0;
  for (int64_t i = begin; i < end; ++i) mine += row[i] >= cutoff;
  int at = 0, total = 0;
  Scan(scratch.scan).ExclusiveSum(mine, at, total);
  int32_t* row_ids = ids + size_t(blockIdx.x) * capacity;
  float* row_values = values + size_t(blockIdx.x) * capacity;
  for (int64_t i = begin; i < end && at < capacity; ++i)
    if (row[i] >= cutoff) row_ids[at] = int32_t(i), row_values[at] = row[i], ++at;
  if (threadIdx.x == 0) counts[blockIdx.x] = total;
}

}  // namespace

void narrow_rows(const float* logits, int64_t rows, int64_t vocab, const float* temperatures, int capacity,
                 int32_t* ids, float* values, int32_t* counts, cudaStream_t stream) {
  if (rows <= 0) return;
  narrow_kernel<<<unsigned(rows), kThreads, 0, stream>>>(logits, vocab, temperatures, capacity, ids, values, counts);
  FP4LLM_CUDA_LAUNCHED();
}

}  // namespace fp4llm::cuda
