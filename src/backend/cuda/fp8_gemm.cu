#include "backend/cuda/fp8_gemm.hpp"

#include <cuda_fp8.h>

#include <string>
#include <utility>

#include "backend/cuda/dequantize_tiles.cuh"
#include "backend/cuda/launch_grid.hpp"
#include "backend/cuda/nvfp4_linear.hpp"
#include "backend/cuda/warp_reduce.cuh"
#include "formats/number_formats.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;

// Each row's scale (number_formats.hpp e4m3_row_scale, as the CPU's fp8_row_scale). One warp per
// 16-row tile; lane (g, t) holds row g's block scale in the low byte of each of its scale words
// and row g + 8's in the high byte (nvfp4_gemv_tile.cuh scale_pair).
__global__ void row_scales_kernel(const uint16_t* scales, const float* tile_scales, int64_t row_tiles, int k_chunks,
                                  float* out) {
  const int64_t tile = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (tile >= row_tiles) return;
  const int lane = threadIdx.x % 32;
  float largest[2] = {0.0f, 0.0f};
  for (int c = 0; c < k_chunks; ++c) {
    const uint16_t two = scales[(size_t(tile) * k_chunks + c) * 32 + lane];
    largest[0] = fmaxf(largest[0], e4m3_to_float(uint8_t(two & 0xFF)));
    largest[1] = fmaxf(largest[1], e4m3_to_float(uint8_t(two >> 8)));
  }
#pragma unroll
  for (int upper = 0; upper < 2; ++upper) {
    largest[upper] = fmaxf(largest[upper], __shfl_xor_sync(0xffffffffu, largest[upper], 1));
    largest[upper] = fmaxf(largest[upper], __shfl_xor_sync(0xffffffffu, largest[upper], 2));
    if (lane % 4 == 0) out[tile * 16 + lane / 4 + 8 * upper] = e4m3_row_scale(largest[upper], tile_scales[2 * tile + upper]);
  }
}

// E4M3 rows of `ld` bytes: value / row scale, rounded to nearest even and saturated (the CPU's
// float_to_e4m3); one 16-byte store per row.
struct E4m3Rows {
  uint8_t* out;
  size_t ld;
  const float* row_scales;
  __device__ __forceinline__ void operator()(size_t row, size_t column, const float (&v)[16]) const {
    const float scale = row_scales[row];
    uint32_t words[4];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v[4 * w] / scale, v[4 * w + 1] / scale), __NV_SATFINITE, __NV_E4M3);
      const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v[4 * w + 2] / scale, v[4 * w + 3] / scale), __NV_SATFINITE, __NV_E4M3);
      words[w] = lo | (hi << 16);  // value 4w in the lowest byte
    }
    *reinterpret_cast<uint4*>(out + row * ld + column) = make_uint4(words[0], words[1], words[2], words[3]);
  }
};

// One warp per token: e4m3_token_scale of its largest |x| as the scale (about amax / 448, as the
// CPU's linear_fp8), then x / scale in E4M3. `k` is even (a multiple of 16).
__global__ void quantize_rows_kernel(const __nv_bfloat16* x, int64_t rows, int64_t k, uint8_t* out, float* scales) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const __nv_bfloat162* in = reinterpret_cast<const __nv_bfloat162*>(x + row * k);
  float amax = 0.0f;
  for (int64_t i = lane; i < k / 2; i += 32) {
    const float2 f = __bfloat1622float2(in[i]);
    amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));
  }
  amax = warp_max(amax);
  const float scale = e4m3_token_scale(amax);
  if (lane == 0) scales[row] = scale;
  __nv_fp8x2_storage_t* dst = reinterpret_cast<__nv_fp8x2_storage_t*>(out + row * k);
  for (int64_t i = lane; i < k / 2; i += 32) {
    const float2 f = __bfloat1622float2(in[i]);
    dst[i] = __nv_cvt_float2_to_fp8x2(make_float2(f.x / scale, f.y / scale), __NV_SATFINITE, __NV_E4M3);
  }
}

template <typename T>
void set(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t what, const T& value) {
  FP4LLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, what, &value, sizeof value));
}

}  // namespace

bool fp8_prefill_enabled() {
  static const bool on = knob_int("FP4LLM_FP8_PREFILL", 0) != 0;
  return on;
}

Fp8Gemm::Fp8Gemm() {
  int device = 0, major = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  FP4LLM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major != 9)
    throw_error("FP4LLM_FP8_PREFILL: cuBLASLt applies per-row and per-token FP8 scales (outer-vector mode) on "
                "Hopper (sm_90) only; unset FP4LLM_FP8_PREFILL");
  FP4LLM_CUBLAS_CHECK(cublasLtCreate(&lt_));
  FP4LLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set(op_, CUBLASLT_MATMUL_DESC_TRANSA, int32_t(CUBLAS_OP_T));  // FP8 GEMMs take A transposed, B not ("TN")
  set(op_, CUBLASLT_MATMUL_DESC_TRANSB, int32_t(CUBLAS_OP_N));
  // One scale per row of W (per output feature) and one per token: OUTER_VEC_32F, applied by
  // cuBLASLt to the FP32 sums (cuBLAS 12.9+ on Hopper).
  set(op_, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, int32_t(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F));
  set(op_, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, int32_t(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F));
  workspace_ = DeviceBuffer<uint8_t>(kLtWorkspaceBytes);
}

Fp8Gemm::~Fp8Gemm() {
  for (cublasLtMatrixLayout_t l : {a_, b_, c_})
    if (l) cublasLtMatrixLayoutDestroy(l);
  if (op_) cublasLtMatmulDescDestroy(op_);
  if (lt_) cublasLtDestroy(lt_);
}

// W8 as cuBLASLt sees it: k x n column-major (ld ldw), transposed by the op; x8 k x rows; y n x
// rows (row-major [rows][n] as the engine holds it), FP32.
void Fp8Gemm::describe(int64_t n, int64_t k, int64_t ldw, int64_t rows) {
  for (cublasLtMatrixLayout_t* l : {&a_, &b_, &c_})
    if (*l) cublasLtMatrixLayoutDestroy(std::exchange(*l, nullptr));
  FP4LLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8F_E4M3, uint64_t(k), uint64_t(n), ldw));
  FP4LLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8F_E4M3, uint64_t(k), uint64_t(rows), k));
  FP4LLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c_, CUDA_R_32F, uint64_t(n), uint64_t(rows), n));
}

cublasLtMatmulAlgo_t Fp8Gemm::algorithm(int64_t n, int64_t k, int64_t rows, bool accumulate) {
  const auto key = std::make_tuple(n, k, rows, accumulate);
  if (auto it = algorithms_.find(key); it != algorithms_.end()) return it->second;
  cublasLtMatmulPreference_t pref = nullptr;
  FP4LLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t bytes = workspace_.bytes();
  FP4LLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(lt_, op_, a_, b_, c_, c_, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0)
    throw_error("FP4LLM_FP8_PREFILL: cuBLASLt offers no FP8 GEMM with per-row and per-token scales for " +
                std::to_string(n) + " x " + std::to_string(k) + " weights and " + std::to_string(rows) +
                " rows on this GPU (" + cublasGetStatusString(status) + "); unset FP4LLM_FP8_PREFILL");
  return algorithms_.emplace(key, result.algo).first->second;
}

void Fp8Gemm::multiply(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y, float beta,
                       uint8_t* weight_scratch, cudaStream_t stream) {
  const int64_t n = w.out_features, k = w.in_features, ldw = w.k_chunks * 64;
  // FP8 operands need 16-byte rows (k E4M3 values), the FP32 output 16-byte rows (n floats).
  if (k % 16 != 0 || n % 4 != 0)
    throw_error("FP4LLM_FP8_PREFILL: a " + std::to_string(n) + " x " + std::to_string(k) +
                " weight; the FP8 GEMM needs input features a multiple of 16 and output features a multiple of 4");
  row_scales_.ensure(size_t(w.row_tiles * 16));
  x_.ensure(size_t(rows * k));
  x_scales_.ensure(size_t(rows));
  constexpr int kWarpsPerBlock = 8;
  row_scales_kernel<<<unsigned((w.row_tiles + kWarpsPerBlock - 1) / kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream>>>(
      w.scales.data(), w.tile_scales.data(), w.row_tiles, int(w.k_chunks), row_scales_.data());
  FP4LLM_CUDA_LAUNCHED();
  const size_t slots = size_t(w.row_tiles * w.k_chunks * 32);
  dequantize_tiles_kernel<<<grid_for(int64_t(slots), 256), 256, 0, stream>>>(
      reinterpret_cast<const uint4*>(w.packed.data()), w.scales.data(), w.tile_scales.data(), int(w.k_chunks), slots,
      E4m3Rows{weight_scratch, size_t(ldw), row_scales_.data()});
  FP4LLM_CUDA_LAUNCHED();
  quantize_rows_kernel<<<unsigned((rows + kWarpsPerBlock - 1) / kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream>>>(
      x, rows, k, x_.data(), x_scales_.data());
  FP4LLM_CUDA_LAUNCHED();

  describe(n, k, ldw, rows);
  set(op_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, static_cast<const void*>(row_scales_.data()));
  set(op_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, static_cast<const void*>(x_scales_.data()));
  const cublasLtMatmulAlgo_t algo = algorithm(n, k, rows, beta != 0.0f);
  const float alpha = 1.0f;
  FP4LLM_CUBLAS_CHECK(cublasLtMatmul(lt_, op_, &alpha, weight_scratch, a_, x_.data(), b_, &beta, y, c_, y, c_, &algo,
                                 workspace_.data(), workspace_.bytes(), stream));
}

}  // namespace fp4llm::cuda
