// State kept per device (a kernel's attributes as loaded on a device, scratch buffers): the
// tensor-parallel ranks are threads of one process on different devices, so such state lives in
// a table indexed by the current device.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

// The current device's index into a per-device table of `slots` entries.
inline size_t current_device_slot(size_t slots) {
  int device = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  if (device < 0 || size_t(device) >= slots) throw_error("CUDA: device ordinal out of range");
  return size_t(device);
}

}  // namespace fp4llm::cuda
