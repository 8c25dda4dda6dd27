// The device build of src/formats against CUDA's own conversions (hardware cvt on sm_89/sm_90
// for FP8) and against the host build: kernels and the CPU backend must round identically.
#include <cuda_bf16.h>
#include <cuda_fp4.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "formats/nvfp4_block.hpp"
#include "formats/nvfp4_quantize.hpp"

using namespace fp4llm;

namespace {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(call)

bool have_gpu(std::string& why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) why = std::string("no CUDA device: ") + cudaGetErrorString(e);
  else if (n == 0) why = "no CUDA device present";
  return e == cudaSuccess && n > 0;
}

#define REQUIRE_GPU()                         \
  do {                                        \
    std::string why;                          \
    if (!have_gpu(why)) GTEST_SKIP() << why;  \
  } while (0)

struct Converted {
  uint8_t ours_e4m3, cuda_e4m3, ours_e2m1, cuda_e2m1;
  uint16_t ours_bf16, cuda_bf16;
};

__global__ void convert(const float* x, Converted* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  Converted c;
  c.ours_e4m3 = float_to_e4m3(x[i]);
  c.cuda_e4m3 = __nv_cvt_float_to_fp8(x[i], __NV_SATFINITE, __NV_E4M3);
  c.ours_e2m1 = float_to_e2m1(x[i]);
  c.cuda_e2m1 = __nv_cvt_float_to_fp4(x[i], __NV_E2M1, cudaRoundNearest);
  c.ours_bf16 = float_to_bf16(x[i]);
  const __nv_bfloat16 b = __float2bfloat16_rn(x[i]);
  memcpy(&c.cuda_bf16, &b, 2);
  out[i] = c;
}

__global__ void decode_all(float* e4m3, float* e2m1, float* cuda_e4m3) {
  const int c = threadIdx.x;  // 256 threads
  e4m3[c] = e4m3_to_float(uint8_t(c));
  cuda_e4m3[c] = __half2float(__half(__nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(c), __NV_E4M3)));
  if (c < 16) e2m1[c] = e2m1_to_float(uint8_t(c));
}

// One thread per 16-element block, with the host-computed global scale.
__global__ void quantize_blocks(const float* w, int blocks, float global_scale, uint8_t* packed,
                                uint8_t* scales) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  const float* block = w + b * kNvfp4BlockSize;
  float amax = 0;
  for (int i = 0; i < kNvfp4BlockSize; ++i) amax = fmaxf(amax, fabsf(block[i]));
  scales[b] = nvfp4_block_scale(amax, global_scale);
  nvfp4_quantize_block(block, scales[b], global_scale, packed + b * kNvfp4BlockSize / 2);
}

std::vector<float> probe_values() {
  std::vector<float> v = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 448.0f, 464.0f, 1e30f, 1e-30f};
  for (int c = 0; c < 255; ++c) {
    const float a = e4m3_to_float(uint8_t(c)), b = e4m3_to_float(uint8_t(c + 1));
    if (std::isfinite(a) && std::isfinite(b) && c != 127) {
      const float m = (a + b) / 2;
      v.insert(v.end(), {a, m, std::nextafter(m, INFINITY), std::nextafter(m, -INFINITY)});
    }
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 4000000; ++i) v.push_back(bits_float(uint32_t(rng())));
  std::uniform_real_distribution<float> u(-8, 8);
  for (int i = 0; i < 1000000; ++i) v.push_back(u(rng));
  return v;
}

}  // namespace

TEST(GpuNumberFormats, ConversionsMatchCudaAndHost) {
  REQUIRE_GPU();
  const std::vector<float> x = probe_values();
  const int n = int(x.size());
  float* dx;
  Converted* dout;
  CUDA_OK(cudaMalloc(&dx, n * sizeof(float)));
  CUDA_OK(cudaMalloc(&dout, n * sizeof(Converted)));
  CUDA_OK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemset(dout, 0xCD, n * sizeof(Converted)));  // poison: every element must be written
  convert<<<(n + 255) / 256, 256>>>(dx, dout, n);
  CUDA_OK(cudaGetLastError());
  std::vector<Converted> out(n);
  CUDA_OK(cudaMemcpy(out.data(), dout, n * sizeof(Converted), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) {
    const Converted& c = out[i];
    ASSERT_EQ(c.ours_e4m3, c.cuda_e4m3) << "x=" << x[i];
    ASSERT_EQ(c.ours_e4m3, float_to_e4m3(x[i])) << "device vs host, x=" << x[i];
    if (x[i] != 0.0f) ASSERT_EQ(c.ours_e2m1, c.cuda_e2m1) << "x=" << x[i];  // -0.0: see unit test
    ASSERT_EQ(c.ours_e2m1, float_to_e2m1(x[i])) << "device vs host, x=" << x[i];
    if (!std::isnan(x[i])) ASSERT_EQ(c.ours_bf16, c.cuda_bf16) << "x=" << x[i];
  }
  cudaFree(dx);
  cudaFree(dout);
}

TEST(GpuNumberFormats, DecodeMatchesCudaAndHost) {
  REQUIRE_GPU();
  float *d, *d2, *dc;
  CUDA_OK(cudaMalloc(&d, 256 * 4));
  CUDA_OK(cudaMalloc(&d2, 16 * 4));
  CUDA_OK(cudaMalloc(&dc, 256 * 4));
  decode_all<<<1, 256>>>(d, d2, dc);
  CUDA_OK(cudaGetLastError());
  float e4m3[256], e2m1[16], cuda[256];
  CUDA_OK(cudaMemcpy(e4m3, d, sizeof e4m3, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(e2m1, d2, sizeof e2m1, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(cuda, dc, sizeof cuda, cudaMemcpyDeviceToHost));
  for (int c = 0; c < 256; ++c) {
    if (std::isnan(cuda[c])) {
      ASSERT_TRUE(std::isnan(e4m3[c])) << c;
      continue;
    }
    ASSERT_EQ(float_bits(e4m3[c]), float_bits(cuda[c])) << c;
    ASSERT_EQ(float_bits(e4m3[c]), float_bits(e4m3_to_float(uint8_t(c)))) << c;
  }
  for (int c = 0; c < 16; ++c) ASSERT_EQ(float_bits(e2m1[c]), float_bits(e2m1_to_float(uint8_t(c))));
  cudaFree(d);
  cudaFree(d2);
  cudaFree(dc);
}

TEST(GpuNumberFormats, BlockQuantizationMatchesHost) {
  REQUIRE_GPU();
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 0.05f);
  for (const auto [rows, cols] : {std::pair{1, 16}, {3, 48}, {17, 272}, {64, 4096}, {1000, 80}}) {
    std::vector<float> w(size_t(rows) * cols);
    for (float& v : w) v = nd(rng);
    w[0] = 2.5f;                                       // an outlier
    std::fill_n(w.begin() + (rows - 1) * cols, 16, 0.0f);  // a zero block
    const Nvfp4Matrix host = quantize_nvfp4(rows, cols, [&](int64_t r, float* out) {
      std::copy_n(&w[size_t(r) * cols], cols, out);
    });
    const int blocks = rows * cols / kNvfp4BlockSize;
    float* dw;
    uint8_t *dp, *ds;
    CUDA_OK(cudaMalloc(&dw, w.size() * 4));
    CUDA_OK(cudaMalloc(&dp, w.size() / 2));
    CUDA_OK(cudaMalloc(&ds, blocks));
    CUDA_OK(cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(dp, 0xCD, w.size() / 2));
    CUDA_OK(cudaMemset(ds, 0xCD, blocks));
    quantize_blocks<<<(blocks + 127) / 128, 128>>>(dw, blocks, host.global_scale, dp, ds);
    CUDA_OK(cudaGetLastError());
    std::vector<uint8_t> packed(w.size() / 2), scales(blocks);
    CUDA_OK(cudaMemcpy(packed.data(), dp, packed.size(), cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(scales.data(), ds, scales.size(), cudaMemcpyDeviceToHost));
    EXPECT_EQ(packed, host.packed) << rows << "x" << cols;
    EXPECT_EQ(scales, host.block_scales) << rows << "x" << cols;
    cudaFree(dw);
    cudaFree(dp);
    cudaFree(ds);
  }
}
