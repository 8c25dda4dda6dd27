// Kernels that take more than 48 KB of dynamic shared memory must raise their limit first.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <mutex>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/device_slot.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

// FP4LLM_SMEM_CARVEOUT=P (0-100; unset: the driver's choice): the share of each SM's unified L1 /
// shared memory that every kernel raising its limit here, and the decode step's kernels without
// shared memory (the norm, rope and x layout kernels: prefer_smem_carveout), prefer as shared
// memory. A diagnosis (H100, 2026-12-07): with the pipelined GEMV (226 KB a block) on Qwen3-8B's
// qkv alone, o_proj, gate/up and down_proj, unchanged, each took 5-12 us more in the step's trace;
// if the SMs' configuration changing between kernels (or L1 shrunk to 28 KB after it) is why, one
// preference for all of them shows it.
inline int preferred_smem_carveout() {
  static const int percent = [] {
    const int64_t p = knob_int("FP4LLM_SMEM_CARVEOUT", -1);
    if (p < -1 || p > 100) throw_error("FP4LLM_SMEM_CARVEOUT: a percentage from 0 to 100");
    return int(p);
  }();
  return percent;
}

// kKernel's carveout preference (FP4LLM_SMEM_CARVEOUT), set once a device; nothing when unset.
template <auto kKernel>
void prefer_smem_carveout() {
  const int carveout = preferred_smem_carveout();
  if (carveout < 0) return;
  static std::mutex mutex;
  static std::array<bool, 64> set{};
  bool& mine = set[current_device_slot(set.size())];
  const std::lock_guard lock(mutex);
  if (mine) return;
  FP4LLM_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributePreferredSharedMemoryCarveout, carveout));
  mine = true;
}

// Raises kKernel's dynamic shared-memory limit to at least `bytes` on the current device. The
// attribute belongs to the kernel as loaded on one device, and tensor-parallel ranks are threads
// of one process on different devices, so each device keeps its own record.
// Called on every launch: after the first on a device it is a lookup without a lock.
template <auto kKernel>
void allow_dynamic_smem(int bytes) {
  static std::mutex mutex;
  static std::array<std::atomic<int>, 64> raised{};  // per device ordinal: the limit set so far
  std::atomic<int>& mine = raised[current_device_slot(raised.size())];
  if (mine.load(std::memory_order_acquire) >= bytes) return;
  const std::lock_guard lock(mutex);
  if (mine.load(std::memory_order_relaxed) >= bytes) return;
  FP4LLM_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  prefer_smem_carveout<kKernel>();
  mine.store(bytes, std::memory_order_release);
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
