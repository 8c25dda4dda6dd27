// CUDA and cuBLAS status checks that turn a failed call into fp4llm's Error, naming the call.
// Free of fmt so .cu files can include it (nvcc cannot evaluate fmt's consteval checks).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace fp4llm::cuda {
[[noreturn]] void throw_cuda_error(const char* status, const char* call, const char* file, int line);
[[noreturn]] void throw_error(const std::string& message);
}  // namespace fp4llm::cuda

#define FP4LLM_CUDA_CHECK(call)                                                                       \
  do {                                                                                                \
    const cudaError_t fp4llm_status_ = (call);                                                        \
    if (fp4llm_status_ != cudaSuccess)                                                                \
      ::fp4llm::cuda::throw_cuda_error(cudaGetErrorString(fp4llm_status_), #call, __FILE__, __LINE__); \
  } while (0)

#define FP4LLM_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                     \
    const cublasStatus_t fp4llm_status_ = (call);                                                          \
    if (fp4llm_status_ != CUBLAS_STATUS_SUCCESS)                                                           \
      ::fp4llm::cuda::throw_cuda_error(cublasGetStatusString(fp4llm_status_), #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports a bad launch configuration at once.
#define FP4LLM_CUDA_LAUNCHED() FP4LLM_CUDA_CHECK(cudaGetLastError())
