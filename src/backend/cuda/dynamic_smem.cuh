// Kernels that take more than 48 KB of dynamic shared memory must raise their limit first.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <mutex>

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

// Raises kKernel's dynamic shared-memory limit to at least `bytes` on the current device. The
// attribute belongs to the kernel as loaded on one device, and tensor-parallel ranks are threads
// of one process on different devices, so each device keeps its own record.
template <auto kKernel>
void allow_dynamic_smem(int bytes) {
  static std::mutex mutex;
  static std::array<int, 64> raised{};  // per device ordinal: the limit set so far
  int device = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  if (device < 0 || device >= int(raised.size())) throw_error("CUDA: device ordinal out of range");
  const std::lock_guard lock(mutex);
  if (raised[size_t(device)] >= bytes) return;
  FP4LLM_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  raised[size_t(device)] = bytes;
}

// The most dynamic shared memory one block of the current device may opt in to (227 KB on
// sm_90, 99 KB on sm_89).
inline int max_dynamic_smem() {
  int device = 0, bytes = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  FP4LLM_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return bytes;
}

}  // namespace fp4llm::cuda
