// The small layer kernels against host computations written here: argmax (greedy decoding on
// the GPU), including planted ties (the lowest index wins, as std::max_element's first maximum)
// and rows wider than one block's threads.
#include <algorithm>
#include <random>

#include "backend/cuda/layer_kernels.hpp"
#include "gpu_test_support.hpp"

using namespace fp4llm;

TEST(GpuLayerKernels, ArgmaxPicksTheFirstMaximumOfEachRow) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(21);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t width : {1, 17, 1024, 1025, 151936, 262144}) {
    const int64_t rows = 9;
    std::vector<float> v(size_t(rows * width));
    for (float& x : v) x = normal(rng);
    // Row 1: a tie between two positions far apart; row 2: all equal; row 3: the maximum last.
    if (width > 1) {
      v[size_t(width + width - 1)] = v[size_t(width + width / 3)] = 100.0f;
      std::fill(v.begin() + 2 * width, v.begin() + 3 * width, -1.5f);
      v[size_t(3 * width + width - 1)] = 50.0f;
    }
    const auto vd = cuda::DeviceBuffer<float>::from_host(v);
    auto out = test_support::poisoned<int32_t>(size_t(rows));
    cuda::argmax_rows(vd.data(), rows, width, out.data(), nullptr);
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<int32_t> got = out.to_host();
    for (int64_t r = 0; r < rows; ++r) {
      const auto row = v.begin() + r * width;
      EXPECT_EQ(got[size_t(r)], int32_t(std::max_element(row, row + width) - row)) << "width " << width << " row " << r;
    }
  }
}
