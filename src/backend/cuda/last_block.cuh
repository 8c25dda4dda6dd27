// "The last block to finish does the rest": a kernel whose blocks each write part of a result and
// whose final step needs all of it (the fused MoE routing's selection, the GEMV epilogues'
// residual norm) counts its blocks on a device counter instead of ending and launching a second
// kernel, the launch and round trip that bound small decode steps.
#pragma once

#include <cuda_runtime.h>

namespace fp4llm::cuda {

// Every thread of every one of the grid's `blocks` calls this once, after its last write of the
// shared result. True (in every thread) in the block that counts last, which then sees every other
// block's writes. The counter must be zero before the launch; it is zero again when this returns
// in the last block, ready for the next launch or graph replay.
__device__ __forceinline__ bool last_block_done(unsigned int* counter, unsigned int blocks) {
  __shared__ bool last;
  __threadfence();  // this thread's writes are visible before the count says the block is done
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1u) == blocks - 1;
    if (last) *counter = 0;  // every block has counted
  }
  __syncthreads();
  if (last) __threadfence();  // and the other blocks' writes are seen here
  return last;
}

}  // namespace fp4llm::cuda
