// Prefill products in FP8 (FP4LLM_FP8_PREFILL=1, off by default: measured slower,
// docs/PERFORMANCE.md): the NVFP4 weight dequantized to E4M3 rows under a per-row scale, the BF16
// activations quantized to E4M3 under a per-token scale, and cuBLASLt's FP8 tensor-core GEMM (twice
// BF16's peak) applying both scale vectors to its FP32 sums. cuBLASLt offers these outer-vector
// scales on Hopper only (sm_90; Ada has tensor-wide FP8 scales), so elsewhere the constructor
// refuses. The CPU backend's linear_fp8 computes the same quantities (its accuracy:
// docs/ACCURACY.md).
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/cuda/device_buffer.hpp"

namespace fp4llm::cuda {

struct DeviceNvfp4Linear;

// What one FP8 product needs beyond the BF16 path's scratch (whose bytes hold the E4M3 weight).
class Fp8Gemm {
 public:
  Fp8Gemm();
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // y (= or += with beta 1) x W^T for `rows` BF16 rows of x; `weight_scratch` holds at least
  // row_tiles * 16 * k_chunks * 64 bytes. Grows its own buffers on first use of a shape (not
  // inside a graph capture: prefill steps are never captured).
  void multiply(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y, float beta,
                uint8_t* weight_scratch, cudaStream_t stream);

 private:
  // The heuristic's choice for the layouts describe() set, kept per shape (the weight's row
  // stride follows from k).
  cublasLtMatmulAlgo_t algorithm(int64_t n, int64_t k, int64_t rows, bool accumulate);
  void describe(int64_t n, int64_t k, int64_t ldw, int64_t rows);

  cublasLtHandle_t lt_ = nullptr;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  DeviceBuffer<uint8_t> x_, workspace_;
  DeviceBuffer<float> x_scales_, row_scales_;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool>, cublasLtMatmulAlgo_t> algorithms_;
};

// FP4LLM_FP8_PREFILL=1 (read once).
bool fp8_prefill_enabled();

}  // namespace fp4llm::cuda
