// What the product before a deferred RMSNorm leaves for the kernels after it (FP4LLM_NORM_DEFERRED;
// the kernels in gemv_deferred_norm.cuh, nvfp4_experts_down_combined.cuh and the MoE router):
// besides the rows times the norm's gains in BF16, one partial sum of squares per 16 rows of the
// residual stream and token, from which each consumer takes 1 / rms (deferred_norm.cuh).
#pragma once

#include <cstdint>

namespace fp4llm::cuda {

// Partial sums per row of `features` values (one per 16: the producing GEMV's row tiles).
constexpr int64_t deferred_norm_parts(int64_t features) { return (features + 15) / 16; }

struct DeferredNorm {
  float* sums = nullptr;  // [rows][parts] float32
  int64_t parts = 0;      // the first product's 16-row tiles: deferred_norm_parts(its weight)
  float eps = 1e-6f;
};

}  // namespace fp4llm::cuda
