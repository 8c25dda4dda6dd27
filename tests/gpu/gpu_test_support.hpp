// Shared by the GPU tests: skip (with the reason) where the CUDA backend cannot run, and move
// vectors to and from the device. Outputs are poisoned with NaN bytes before each kernel runs,
// so an element the kernel forgets to write fails the comparison.
#pragma once

#include <gtest/gtest.h>

#include "backend/backend_factory.hpp"
#include "backend/cuda/device_buffer.hpp"

#define FP4LLM_REQUIRE_GPU()                                                   \
  do {                                                                         \
    if (const std::string why = fp4llm::cuda_unavailable_reason(); !why.empty()) \
      GTEST_SKIP() << why;                                                     \
  } while (0)

namespace fp4llm::test_support {

template <typename T>
cuda::DeviceBuffer<T> poisoned(size_t count) {
  cuda::DeviceBuffer<T> b(count);
  FP4LLM_CUDA_CHECK(cudaMemset(b.data(), 0xFF, b.bytes()));
  return b;
}

}  // namespace fp4llm::test_support
