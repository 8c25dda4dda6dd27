// One instruction that asks L2 for a whole contiguous range (sm_90's bulk prefetch), so that a
// kernel can put all of its reads in flight at once instead of as many as its registers hold.
// Nothing on GPUs before sm_90.
#pragma once

#include <cstdint>

namespace fp4llm::cuda {

// `bytes` bytes from `p`: both 16-byte aligned, a multiple of 16. A hint: no data is returned.
__device__ __forceinline__ void prefetch_l2_bulk(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(__cvta_generic_to_global(p)), "r"(bytes) : "memory");
#endif
}

}  // namespace fp4llm::cuda
