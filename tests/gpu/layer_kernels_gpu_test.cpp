// The small layer kernels against host computations: argmax (greedy decoding on the GPU),
// including planted ties (the lowest index wins, as std::max_element's first maximum) and rows
// wider than one block's threads; the sampling candidates' narrowing against the host's; the
// embedding lookup from a table in GPU memory and from one in mapped host memory.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "backend/candidate_rows.hpp"
#include "backend/cuda/host_mapped_buffer.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/narrow_rows.hpp"
#include "formats/number_formats.hpp"
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

// Sampling candidates narrowed on the GPU equal the host's narrowing (backend/candidate_rows.hpp),
// entry for entry, for sharp and flat rows, greedy and hot temperatures, planted ties, and rows
// with more candidates than the capacity (their count is still exact).
TEST(GpuLayerKernels, NarrowedRowsMatchTheHostRule) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(23);
  for (int64_t vocab : {7000, 151936}) {
    const std::vector<float> temperatures = {0.0f, 0.7f, 1.0f, 1.3f, 60.0f, 0.05f};
    const int64_t rows = int64_t(temperatures.size());
    std::vector<float> v(size_t(rows * vocab));
    for (int64_t r = 0; r < rows; ++r) {
      std::normal_distribution<float> normal(0.0f, r % 2 ? 0.5f : 6.0f);
      for (int64_t i = 0; i < vocab; ++i) v[size_t(r * vocab + i)] = normal(rng);
      v[size_t(r * vocab + 5)] = v[size_t(r * vocab + vocab - 3)] = 40.0f;  // a tie for the best
    }
    const int capacity = 2048;
    const auto vd = cuda::DeviceBuffer<float>::from_host(v);
    const auto td = cuda::DeviceBuffer<float>::from_host(temperatures);
    auto ids = test_support::poisoned<int32_t>(size_t(rows * capacity));
    auto values = test_support::poisoned<float>(size_t(rows * capacity));
    auto counts = test_support::poisoned<int32_t>(size_t(rows));
    cuda::narrow_rows(vd.data(), rows, vocab, td.data(), capacity, ids.data(), values.data(), counts.data(), nullptr);
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<int32_t> got_ids = ids.to_host(), got_counts = counts.to_host();
    const std::vector<float> got_values = values.to_host();
    bool saw_overflow = false;
    for (int64_t r = 0; r < rows; ++r) {
      CandidateRows want;
      append_narrowed(std::span(v).subspan(size_t(r * vocab), size_t(vocab)), temperatures[size_t(r)], want);
      ASSERT_EQ(got_counts[size_t(r)], int32_t(want.ids.size())) << "vocab " << vocab << " row " << r;
      saw_overflow |= want.ids.size() > size_t(capacity);
      const size_t n = std::min(want.ids.size(), size_t(capacity));
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(got_ids[size_t(r) * capacity + i], want.ids[i]) << "vocab " << vocab << " row " << r << " entry " << i;
        ASSERT_EQ(got_values[size_t(r) * capacity + i], want.logits[i]);
      }
    }
    EXPECT_TRUE(saw_overflow) << "the hot row should exceed the capacity";
  }
}

// Rows of the table times the scale, exactly (one float multiply of a BF16 value), for widths
// that take the 16-byte path (208, 5376) and one that does not (100), with repeated and extreme
// ids, the table in GPU memory and in pinned host memory (--offload-embeddings).
TEST(GpuLayerKernels, EmbeddingRowsFromGpuAndHostMemory) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(31);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t hidden : {208, 100, 5376}) {
    const int64_t vocab = 1000;
    std::vector<uint16_t> table(size_t(vocab * hidden));
    for (uint16_t& b : table) b = float_to_bf16(normal(rng));
    const std::vector<int32_t> ids = {0, 999, 5, 5, 417, 1, 998};
    const int64_t tokens = int64_t(ids.size());
    const float scale = hidden == 5376 ? bf16_to_float(float_to_bf16(std::sqrt(5376.0f))) : 1.0f;
    cuda::DeviceBuffer<__nv_bfloat16> on_gpu(table.size());
    FP4LLM_CUDA_CHECK(cudaMemcpy(on_gpu.data(), table.data(), table.size() * 2, cudaMemcpyHostToDevice));
    cuda::HostMappedBuffer<__nv_bfloat16> on_host(table.size());
    std::memcpy(static_cast<void*>(on_host.host()), table.data(), table.size() * 2);
    const auto id_buf = cuda::DeviceBuffer<int32_t>::from_host(ids);
    for (const __nv_bfloat16* t : {static_cast<const __nv_bfloat16*>(on_gpu.data()), on_host.device()}) {
      auto x = test_support::poisoned<float>(size_t(tokens * hidden));
      cuda::embed_tokens(t, id_buf.data(), tokens, hidden, scale, x.data(), nullptr);
      FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<float> got = x.to_host();
      for (int64_t i = 0; i < tokens; ++i)
        for (int64_t c = 0; c < hidden; ++c)
          ASSERT_EQ(got[size_t(i * hidden + c)], bf16_to_float(table[size_t(ids[size_t(i)] * hidden + c)]) * scale)
              << "hidden " << hidden << " token " << i << " column " << c << (t == on_host.device() ? " (host table)" : "");
    }
  }
}
