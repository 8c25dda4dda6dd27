// Kernels that take more than 48 KB of dynamic shared memory must raise their limit first.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

// Raises kKernel's dynamic shared-memory limit to `bytes`, on the first call for that kernel
// (callers pass the most the kernel ever launches with).
template <auto kKernel>
void allow_dynamic_smem(int bytes) {
  static const cudaError_t status = cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  FP4LLM_CUDA_CHECK(status);
}

}  // namespace fp4llm::cuda
