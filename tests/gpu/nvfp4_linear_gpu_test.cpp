// The NVFP4 linear kernels (tensor-core GEMV for up to 64 rows, dequantize + cuBLAS beyond)
// against a float64 product of the same dequantized weights and BF16-rounded activations, over
// shapes with padding in rows and columns and row counts on both sides of every tile boundary.
#include <cmath>
#include <random>

#include "backend/cuda/nvfp4_linear.hpp"
#include "formats/number_formats.hpp"
#include "gpu_test_support.hpp"
#include "random_nvfp4.hpp"

using namespace fp4llm;

namespace {

struct Shape {
  int64_t out, in;
};

std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& x) {
  std::vector<__nv_bfloat16> b(x.size());
  for (size_t i = 0; i < x.size(); ++i) b[i] = __float2bfloat16_rn(x[i]);
  return b;
}

}  // namespace

TEST(GpuNvfp4Linear, MatchesFloat64Reference) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  cuda::LinearWorkspace ws;
  FP4LLM_CUBLAS_CHECK(cublasCreate(&ws.cublas));
  FP4LLM_CUDA_CHECK(cudaDeviceGetAttribute(&ws.num_sms, cudaDevAttrMultiProcessorCount, 0));
  const std::vector<Shape> shapes = {{1, 16}, {16, 64}, {17, 80}, {300, 1040}, {1024, 4096}, {2560, 640}, {96, 12288}, {4100, 208}};
  const std::vector<int64_t> row_counts = {1, 3, 8, 9, 17, 33, 64, 65, 200};
  for (const Shape& s : shapes) {
    const QuantizedLinear q = test_support::random_nvfp4(s.out, s.in, rng);
    const QuantizedLinear* parts[] = {&q};
    const cuda::Nvfp4Tiles tiles = cuda::make_nvfp4_tiles(parts);
    const cuda::DeviceNvfp4Linear w = cuda::upload_nvfp4(tiles);
    ws.partials.ensure(size_t(cuda::nvfp4_partials_needed(s.out, tiles.k_chunks, ws.num_sms)));
    ws.dequantized.ensure(size_t(tiles.row_tiles * 16 * tiles.k_chunks * 64));
    std::vector<float> weights(static_cast<size_t>(s.out * s.in));
    for (int64_t r = 0; r < s.out; ++r) q.dequantize_row(r, &weights[size_t(r * s.in)]);
    for (int64_t rows : row_counts) {
      std::vector<float> x(static_cast<size_t>(rows * s.in));
      for (float& v : x) v = bf16_to_float(float_to_bf16(normal(rng)));
      const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(x));
      auto yd = test_support::poisoned<float>(size_t(rows * s.out));
      cuda::nvfp4_linear(w, xd.data(), rows, yd.data(), ws, nullptr);
      FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<float> y = yd.to_host();
      // Decode kernel: BF16 products are exact, only float32 accumulation differs. cuBLAS path:
      // weights rounded to BF16 once (relative 2^-9).
      const double tol = rows > cuda::kMaxDecodeRows ? 6e-3 : 1e-4;
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t n = 0; n < s.out; ++n) {
          double ref = 0, bound = 0;
          for (int64_t k = 0; k < s.in; ++k) {
            const double p = double(weights[size_t(n * s.in + k)]) * x[size_t(m * s.in + k)];
            ref += p;
            bound += std::fabs(p);
          }
          const float got = y[size_t(m * s.out + n)];
          ASSERT_TRUE(std::isfinite(got)) << s.out << "x" << s.in << " rows " << rows << " at " << m << "," << n;
          ASSERT_LE(std::fabs(got - ref), tol * bound + 1e-30)
              << s.out << "x" << s.in << " rows " << rows << " at " << m << "," << n << " got " << got << " want " << ref;
        }
    }
  }
  cublasDestroy(ws.cublas);
}
