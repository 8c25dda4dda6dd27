// A token's 1 / rms from a deferred norm's partial sums (deferred_norm.hpp), by one warp, the
// result in every lane. Every consumer sums in this order, so all of them scale by the same value.
#pragma once

#include "backend/cuda/deferred_norm.hpp"
#include "backend/cuda/warp_reduce.cuh"

namespace fp4llm::cuda {

__device__ __forceinline__ float deferred_inv_rms(const float* sums, int parts, int row, int hidden, float eps, int lane) {
  const float* part = sums + size_t(row) * parts;
  float sum = 0.0f;
  for (int i = lane; i < parts; i += 32) sum += part[i];
  return rsqrtf(warp_sum(sum) / float(hidden) + eps);
}

}  // namespace fp4llm::cuda
