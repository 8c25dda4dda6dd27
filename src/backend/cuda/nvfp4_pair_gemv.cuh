// Decode-shape NVFP4 GEMV for one to eight tokens, two tokens per MMA. The 8-token kernel
// (nvfp4_linear.cu) multiplies every weight pair by its block scale before the MMA and leaves 7
// of the MMA's 8 columns idle at batch 1; here the MMA's columns are the four NVFP4 blocks of a
// chunk for each of two tokens (a block-diagonal B), so each column sums exactly one block and
// the block scales go on the four results instead of on the 32 weights. At batch 1 a chunk costs
// about half the instructions, which is what bounds the kernel (see docs/PERFORMANCE.md).
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/nvfp4_gemv_parts.cuh"

namespace fp4llm::cuda {

constexpr int64_t kMaxPairRows = 8;

// p as for the 8-token kernel (splits set); rows: the tokens (per group when grouped).
void launch_pair_gemv(const gemv::GemvArgs& p, int64_t rows, unsigned groups, bool grouped, cudaStream_t stream);

}  // namespace fp4llm::cuda
