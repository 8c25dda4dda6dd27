// 2-D tensor maps for sm_90's tensor copies (cp.async.bulk.tensor), encoded by the driver's
// cuTensorMapEncodeTiled, which the runtime hands out (nothing links libcuda itself). Host-only.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

// `x`: rows x k BF16 values, row-major. Boxes of `box_rows` rows x 64 columns (one 128-byte row
// segment each), 128-byte swizzled in shared memory (a row's 16-byte piece j lands at piece
// j ^ (row % 8)); elements outside the tensor arrive as zeros.
inline CUtensorMap bf16_row_chunks_tensor_map(const void* x, int64_t rows, int64_t k, uint32_t box_rows) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess || fn == nullptr)
      throw_error("CUDA: this driver does not give cuTensorMapEncodeTiled (tensor copies need CUDA 12 or later)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (k % 8 != 0 || reinterpret_cast<uintptr_t>(x) % 16 != 0 || rows < 1)
    throw_error("CUDA tensor map: " + std::to_string(rows) + " rows of " + std::to_string(k) +
                " BF16 values need 16-byte aligned rows (a multiple of 8 values) and at least one row");
  CUtensorMap map{};
  const cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(k) * 2};
  const cuuint32_t box[2] = {64, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult status =
      encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(x), dims, strides, box, element_strides,
             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (status != CUDA_SUCCESS)
    throw_error("CUDA tensor map: cuTensorMapEncodeTiled failed (" + std::to_string(int(status)) + ") for " +
                std::to_string(rows) + " x " + std::to_string(k) + " BF16 values");
  return map;
}

}  // namespace fp4llm::cuda
