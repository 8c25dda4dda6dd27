// Programmatic dependent launch (sm_90+): a kernel launched early through launch_dependent() may be
// scheduled while the kernel before it in the stream still runs, which hides its launch and, for
// a plain GEMV, lets it stream its first weights during the producer of its input. The MoE
// expert-group direct GEMVs (up to 16 rows) always launch early; the other decode kernels as the
// part of the step they belong to says (early_launch.hpp: every part for dense models, the rope
// kernel and o_proj for Qwen3-MoE, FP4LLM_PDL_ROLES to choose), the products alone under
// FP4LLM_PDL=products (early_launch_products). Rules
// for such a kernel: before wait_for_producer() it reads only what no earlier kernel of the step
// writes (weights) and writes nothing. let_dependents_start() in a producer only allows the
// next kernel to be scheduled early; that kernel's wait still covers this one's completion and
// memory. FP4LLM_PDL=0 launches everything in plain stream order, to compare.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/early_launch.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

__device__ __forceinline__ void wait_for_producer() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void let_dependents_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// True when the current device is sm_90 or later (dependent launch).
inline bool device_is_sm90_or_later() {
  int device = 0, major = 0;
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 9;
}

// True on sm_90+ devices unless FP4LLM_PDL=0 (read once; every GPU of a process has one arch).
inline bool dependent_launch_enabled() {
  static const bool on = device_is_sm90_or_later() && knob_on("FP4LLM_PDL");
  return on;
}

// `early` false: a plain launch (the same kernel, whose wait_for_producer() is then a no-op).
// cluster_z > 1 (sm_90+): the grid's z dimension in clusters of that many blocks.
template <typename... Params, typename... Args>
void launch_dependent_in_clusters(bool early, unsigned cluster_z, void (*kernel)(Params...), dim3 grid, dim3 block,
                                  size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attributes[2]{};
  unsigned count = 0;
  if (early && dependent_launch_enabled()) {
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster_z > 1) {
    attributes[count].id = cudaLaunchAttributeClusterDimension;
    attributes[count++].val.clusterDim = {1, 1, cluster_z};
  }
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attributes;
  config.numAttrs = count;
  FP4LLM_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

template <typename... Params, typename... Args>
void launch_dependent(bool early, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                      Args&&... args) {
  launch_dependent_in_clusters(early, 1, kernel, grid, block, smem, stream, std::forward<Args>(args)...);
}

}  // namespace fp4llm::cuda
