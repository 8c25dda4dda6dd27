#include "backend/backend_factory.hpp"

#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/cpu_tensor_parallel.hpp"
#include "util/error.hpp"

#ifdef FP4LLM_WITH_CUDA_BACKEND
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/tensor_parallel_backend.hpp"
#endif

namespace fp4llm {

std::string cuda_unavailable_reason() {
#ifdef FP4LLM_WITH_CUDA_BACKEND
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) return std::string("no usable CUDA device: ") + cudaGetErrorString(status);
  if (count == 0) return "no CUDA device present";
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  if (prop.major * 10 + prop.minor < 89)
    return "fp4llm's kernels are built for sm_89 (Ada) and sm_90a (Hopper); this GPU is sm_" +
           std::to_string(prop.major * 10 + prop.minor);
  return "";
#else
  return "this fp4llm was built without the CUDA backend (no CUDA toolkit at configure time)";
#endif
}

GpuMemoryInfo gpu_memory_info() {
  if (const std::string why = cuda_unavailable_reason(); !why.empty()) fail("--device cuda: {}", why);
  GpuMemoryInfo info;
#ifdef FP4LLM_WITH_CUDA_BACKEND
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) fail("--device cuda: cudaMemGetInfo failed");
  info.free = free;
  info.total = total;
#endif
  return info;
}

std::unique_ptr<Backend> make_backend(const ModelWeights& weights, const BackendOptions& options) {
  if (options.device == "cpu" && options.tensor_parallel_size > 1)
    return std::make_unique<cpu::CpuTensorParallelBackend>(
        weights, TensorParallelPlan::make(weights.config, options.tensor_parallel_size, options.expert_parallel),
        options.cache);
  if (options.device == "cpu") return std::make_unique<cpu::CpuBackend>(weights, options.cache);
  if (options.device != "cuda") fail("--device must be cpu or cuda, got '{}'", options.device);
  if (const std::string why = cuda_unavailable_reason(); !why.empty()) fail("--device cuda: {}", why);
#ifdef FP4LLM_WITH_CUDA_BACKEND
  // --offload-embeddings: one pinned host table, read by every GPU.
  const cuda::HostTable table = options.offload_embeddings ? cuda::host_embedding_table(weights) : nullptr;
  if (options.tensor_parallel_size > 1)
    return cuda::make_tensor_parallel_backend(
        weights, TensorParallelPlan::make(weights.config, options.tensor_parallel_size, options.expert_parallel),
        options.cache, options.enforce_eager, options.progress, table);
  return std::make_unique<cuda::CudaBackend>(cuda::upload_model(weights, options.progress, table), options.cache,
                                             options.enforce_eager);
#else
  return nullptr;
#endif
}

}  // namespace fp4llm
