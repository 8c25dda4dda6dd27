// A test's stand-in for a slow producer kernel: lets its dependents start at once (programmatic
// dependent launch), then holds its grid for a given time, so that a dependent kernel launched
// early runs everything before its wait while the kernels ahead of it have not yet written.
#include "producer_delay.hpp"

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/dependent_launch.cuh"

namespace fp4llm::test_support {

namespace {

__global__ void producer_delay_kernel(long long cycles) {
  cuda::let_dependents_start();
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

}  // namespace

void delay_stream(cudaStream_t stream, double microseconds) {
  int khz = 0;
  FP4LLM_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
  producer_delay_kernel<<<1, 32, 0, stream>>>(static_cast<long long>(microseconds * khz / 1000.0));
  FP4LLM_CUDA_LAUNCHED();
}

}  // namespace fp4llm::test_support
