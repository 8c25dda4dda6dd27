// The NVFP4 linear kernels (tensor-core GEMV for up to 64 rows, dequantize + cuBLAS beyond)
// against a float64 product of the same dequantized weights and BF16-rounded activations, over
// shapes with padding in rows and columns and row counts on both sides of every tile boundary.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <tuple>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/l2_ahead.hpp"
#include "backend/cuda/nvfp4_linear.hpp"
#include "formats/number_formats.hpp"
#include "gpu_test_support.hpp"
#include "random_nvfp4.hpp"
#include "util/error.hpp"

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

std::vector<float> dequantized(const QuantizedLinear& q) {
  std::vector<float> w(static_cast<size_t>(q.out_features * q.in_features));
  for (int64_t r = 0; r < q.out_features; ++r) q.dequantize_row(r, &w[size_t(r * q.in_features)]);
  return w;
}

std::vector<float> random_bf16_values(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = bf16_to_float(float_to_bf16(normal(rng)));
  return x;
}

// Row n of W times row m of x in float64, with the sum of |products| (the rounding scale).
std::pair<double, double> dot(const std::vector<float>& w, const std::vector<float>& x, int64_t in, int64_t n, int64_t m) {
  double ref = 0, bound = 0;
  for (int64_t k = 0; k < in; ++k) {
    const double p = double(w[size_t(n * in + k)]) * x[size_t(m * in + k)];
    ref += p;
    bound += std::fabs(p);
  }
  return {ref, bound};
}

// The workspace a dense model's backend makes (the pipelined GEMV where unclustered on sm_90;
// FP4LLM_WGMMA_PIPELINE=0 tests the kernels it replaces).
struct Workspace {
  cuda::LinearWorkspace ws;
  Workspace() {
    FP4LLM_CUBLAS_CHECK(cublasCreate(&ws.cublas));
    ws.pipeline_unclustered = cuda::pipelined_gemv_default(/*moe=*/false);
  }
  ~Workspace() { cublasDestroy(ws.cublas); }
  void fit(const cuda::Nvfp4Tiles& t) {
    ws.dequantized.ensure(size_t(t.row_tiles * 16 * t.k_chunks * 64));
  }
};

// A random NVFP4 matrix, uploaded in the kernels' tile layout (the workspace fitted to it), and
// its values as floats for the references.
struct TestLinear {
  QuantizedLinear q;
  cuda::DeviceNvfp4Linear device;
  std::vector<float> values;
};

TestLinear random_linear(const Shape& s, std::mt19937& rng, Workspace& w) {
  TestLinear t{test_support::random_nvfp4(s.out, s.in, rng), {}, {}};
  const QuantizedLinear* parts[] = {&t.q};
  const cuda::Nvfp4Tiles tiles = cuda::make_nvfp4_tiles(parts);
  t.device = cuda::upload_nvfp4(tiles);
  w.fit(tiles);
  t.values = dequantized(t.q);
  return t;
}

}  // namespace

// `rows` random activations through `lin` (Store: into a poisoned output; Add: onto random
// values already there), every element checked against float64.
void check_product(const TestLinear& lin, const Shape& s, int64_t rows, cuda::LinearOutput mode, std::mt19937& rng,
                   Workspace& w) {
  const bool add = mode == cuda::LinearOutput::Add;
  const std::vector<float> x = random_bf16_values(size_t(rows * s.in), rng);
  const std::vector<float> before = add ? random_bf16_values(size_t(rows * s.out), rng) : std::vector<float>(size_t(rows * s.out));
  const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(x));
  auto yd = add ? cuda::DeviceBuffer<float>::from_host(before) : test_support::poisoned<float>(size_t(rows * s.out));
  cuda::nvfp4_linear(lin.device, xd.data(), rows, yd.data(), w.ws, nullptr, mode);
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> y = yd.to_host();
  // Decode kernel: BF16 products are exact, only float32 accumulation differs. cuBLAS path:
  // weights rounded to BF16 once (relative 2^-9). Add: the float32 sum with what y held.
  const double tol = rows > cuda::kMaxDecodeRows ? 6e-3 : 1e-4;
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t n = 0; n < s.out; ++n) {
      const auto [ref, bound] = dot(lin.values, x, s.in, n, m);
      const double want = ref + before[size_t(m * s.out + n)];
      const float got = y[size_t(m * s.out + n)];
      ASSERT_TRUE(std::isfinite(got)) << s.out << "x" << s.in << " rows " << rows << " at " << m << "," << n;
      ASSERT_LE(std::fabs(got - want), tol * bound + (add ? 1e-6 * std::fabs(want) : 0.0) + 1e-30)
          << s.out << "x" << s.in << " rows " << rows << " at " << m << "," << n << " got " << got << " want " << want;
    }
}

TEST(GpuNvfp4Linear, MatchesFloat64Reference) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(11);
  Workspace w;
  // 64 x 4160 and 64 x 4112: K of 65 chunks (the last ragged in the second), so that with
  // FP4LLM_GEMV_BLOCK_WARPS=16 the last of 16 K splits hold fewer chunks or none.
  const std::vector<Shape> shapes = {{1, 16},      {16, 64},    {17, 80},   {300, 1040}, {1024, 4096},
                                     {2560, 640},  {96, 12288}, {4100, 208}, {64, 4160},  {64, 4112}};
  // 9-16, 17-32 and 33-64 rows are the wgmma kernel's N = 16, 32 and 64 (FP4LLM_GEMV_KERNEL=wgmma).
  const std::vector<int64_t> row_counts = {1, 3, 8, 9, 17, 24, 32, 33, 64, 65, 200};
  for (const Shape& s : shapes) {
    const TestLinear lin = random_linear(s, rng, w);
    for (int64_t rows : row_counts) check_product(lin, s, rows, cuda::LinearOutput::Store, rng, w);
  }
}

// Large matrices (many tiles and K splits) with 1, 11, 33 and 64 rows: checked against float64,
// and two runs agree bit for bit (the K splits are summed in a fixed order). 131072 rows give the
// wgmma kernel (FP4LLM_GEMV_KERNEL=wgmma) more blocks than SMs: two warpgroups per block; 4096 x
// 12288 (down_proj's shape) few enough blocks for clusters under FP4LLM_WGMMA_CLUSTER=2.
TEST(GpuNvfp4Linear, LargeMatricesAreExactAndDeterministic) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(14);
  Workspace w;
  for (const Shape& s : std::vector<Shape>{{8192, 4096}, {131072, 64}, {4096, 12288}}) {
    const TestLinear lin = random_linear(s, rng, w);
    for (int64_t rows : {1, 11, 33, 64}) {
      check_product(lin, s, rows, cuda::LinearOutput::Store, rng, w);
      const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(random_bf16_values(size_t(rows * s.in), rng)));
      std::vector<float> runs[2];
      for (auto& run : runs) {
        auto yd = test_support::poisoned<float>(size_t(rows * s.out));
        cuda::nvfp4_linear(lin.device, xd.data(), rows, yd.data(), w.ws, nullptr);
        FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
        run = yd.to_host();
      }
      ASSERT_EQ(0, std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)))
          << s.out << "x" << s.in << " rows " << rows << ": two runs differ";
    }
  }
}

// FP4LLM_L2_AHEAD's request of a product's own weights (OwnWeightsToL2Scope, o_proj's part) is a
// hint to L2: the products equal those without it bit for bit, on the direct kernel's shapes
// (one and two token groups, 8- and 16-warp blocks, a ragged last chunk and an odd row count).
TEST(GpuNvfp4Linear, AskingL2ForTheWeightsChangesNoBit) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(15);
  Workspace w;
  for (const Shape& s : std::vector<Shape>{{17, 80}, {1024, 4096}, {64, 4112}, {4096, 12288}}) {
    const TestLinear lin = random_linear(s, rng, w);
    for (int64_t rows : {1, 3, 9, 16}) {
      const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(random_bf16_values(size_t(rows * s.in), rng)));
      std::vector<float> runs[2];
      for (int ahead = 0; ahead < 2; ++ahead) {
        const cuda::OwnWeightsToL2Scope scope(ahead == 1);
        auto yd = test_support::poisoned<float>(size_t(rows * s.out));
        cuda::nvfp4_linear(lin.device, xd.data(), rows, yd.data(), w.ws, nullptr);
        FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
        runs[ahead] = yd.to_host();
      }
      ASSERT_EQ(0, std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)))
          << s.out << "x" << s.in << " rows " << rows << ": the L2 request changed the product";
    }
  }
}

// LinearOutput::Add: the product is added to what y held (the residual stream), on both paths.
TEST(GpuNvfp4Linear, AddsIntoTheOutput) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(12);
  Workspace w;
  for (const Shape& s : std::vector<Shape>{{4096, 4096}, {48, 12288}, {300, 1040}}) {
    const TestLinear lin = random_linear(s, rng, w);
    for (int64_t rows : {1, 5, 16, 32, 40, 64, 70}) check_product(lin, s, rows, cuda::LinearOutput::Add, rng, w);
  }
}

// The residual stream's update and next RMSNorm, Qwen3's (the product added) and Gemma3's (the
// product normalised with post_w, then added): the stream against float64 as above, the
// normalised BF16 rows against the float64 norm of the float64 stream. Each case runs twice with
// the outputs poisoned in between, so nothing of the first run can pass for the second.
TEST(GpuNvfp4Linear, UpdatesAndNormalisesTheResidualStream) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(15);
  Workspace w;
  const float eps = 1e-6f;
  for (const Shape& s : std::vector<Shape>{{2048, 2048}, {5376, 1024}, {300, 1040}, {48, 12288}}) {
    const TestLinear lin = random_linear(s, rng, w);
    const std::vector<float> next_w = random_bf16_values(size_t(s.out), rng), post_w = random_bf16_values(size_t(s.out), rng);
    const auto next_d = cuda::DeviceBuffer<float>::from_host(next_w), post_d = cuda::DeviceBuffer<float>::from_host(post_w);
    for (int64_t rows : {1, 3, 9, 16, 17}) {
      for (bool gemma : {false, true}) {
        const std::vector<float> x = random_bf16_values(size_t(rows * s.in), rng);
        const std::vector<float> before = random_bf16_values(size_t(rows * s.out), rng);
        const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(x));
        std::vector<float> stream;
        std::vector<__nv_bfloat16> h;
        for (int run = 0; run < 2; ++run) {
          auto stream_d = cuda::DeviceBuffer<float>::from_host(before);
          auto product_d = test_support::poisoned<float>(size_t(rows * s.out));
          auto hd = test_support::poisoned<__nv_bfloat16>(size_t(rows * s.out));
          cuda::ResidualNorm r{stream_d.data(), gemma ? post_d.data() : nullptr, next_d.data(), eps, gemma, hd.data()};
          cuda::nvfp4_linear_residual(lin.device, xd.data(), rows, product_d.data(), r, w.ws, nullptr);
          FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
          stream = stream_d.to_host();
          h = hd.to_host();
        }
        const auto gain = [&](const std::vector<float>& g, int64_t n) { return gemma ? 1.0 + g[size_t(n)] : double(g[size_t(n)]); };
        for (int64_t m = 0; m < rows; ++m) {
          std::vector<double> product(size_t(s.out)), bound(size_t(s.out)), want(size_t(s.out)), tol(size_t(s.out));
          double ss_product = 0;
          for (int64_t n = 0; n < s.out; ++n) {
            std::tie(product[size_t(n)], bound[size_t(n)]) = dot(lin.values, x, s.in, n, m);
            ss_product += product[size_t(n)] * product[size_t(n)];
          }
          const double inv_product = 1.0 / std::sqrt(ss_product / double(s.out) + eps);
          double ss = 0;
          for (int64_t n = 0; n < s.out; ++n) {
            const double b = before[size_t(m * s.out + n)];
            // Gemma3: float32 error of the product, scaled by its norm, plus the norm's own rounding.
            const double add = gemma ? product[size_t(n)] * inv_product * gain(post_w, n) : product[size_t(n)];
            const double add_tol = gemma ? 1e-4 * bound[size_t(n)] * inv_product * std::fabs(gain(post_w, n)) + 1e-5 * std::fabs(add)
                                         : 1e-4 * bound[size_t(n)];
            want[size_t(n)] = b + add;
            tol[size_t(n)] = add_tol + 1e-6 * std::fabs(want[size_t(n)]) + 1e-30;
            ss += want[size_t(n)] * want[size_t(n)];
            ASSERT_LE(std::fabs(stream[size_t(m * s.out + n)] - want[size_t(n)]), tol[size_t(n)])
                << s.out << "x" << s.in << " rows " << rows << (gemma ? " gemma" : " qwen3") << " stream at " << m << "," << n;
          }
          const double inv = 1.0 / std::sqrt(ss / double(s.out) + eps);
          for (int64_t n = 0; n < s.out; ++n) {
            const double ref = want[size_t(n)] * inv * gain(next_w, n);
            const float got = __bfloat162float(h[size_t(m * s.out + n)]);
            // BF16 rounding of the result (half an ulp is 2^-9 relative), the stream's error
            // carried through, and the float32 sum of squares.
            const double bound_h = std::ldexp(std::fabs(ref), -8) + tol[size_t(n)] * inv * std::fabs(gain(next_w, n)) +
                                   1e-5 * std::fabs(ref);
            ASSERT_LE(std::fabs(got - ref), bound_h) << s.out << "x" << s.in << " rows " << rows
                                                     << (gemma ? " gemma" : " qwen3") << " h at " << m << "," << n
                                                     << " got " << got << " want " << ref;
          }
        }
      }
    }
  }
}

// The products that normalise their own input (nvfp4_linear_normed, nvfp4_gated_normed): x =
// bf16(residual * inv * gain) with inv = 1 / sqrt(mean(residual^2) + eps) in float32 on the GPU.
// The reference rounds the float64 x to BF16; an element whose float64 value lies within 2^-16
// (relative) of a BF16 rounding boundary may round either way in float32, and the bound allows it
// that one step (times its weight), besides float32 accumulation.
struct NormedReference {
  std::vector<float> x;          // [rows][k] the BF16 input as the reference rounds it
  std::vector<double> step;      // [rows][k] |the other rounding - x| where ambiguous, else 0

  // Element i: v rounded to BF16, and the step to the other rounding where v is that close to a boundary.
  void set(size_t i, double v) {
    const float lo = bf16_to_float(float_to_bf16(float(v * (1 - std::ldexp(1.0, -16)))));
    const float hi = bf16_to_float(float_to_bf16(float(v * (1 + std::ldexp(1.0, -16)))));
    x[i] = bf16_to_float(float_to_bf16(float(v)));
    step[i] = std::fabs(double(hi) - double(lo));
  }
};

NormedReference normed_reference(const std::vector<float>& residual, const std::vector<float>& gain, int64_t rows,
                                 int64_t k, float eps, bool one_plus) {
  NormedReference r{std::vector<float>(size_t(rows * k)), std::vector<double>(size_t(rows * k))};
  for (int64_t m = 0; m < rows; ++m) {
    double ss = 0;
    for (int64_t i = 0; i < k; ++i) ss += double(residual[size_t(m * k + i)]) * residual[size_t(m * k + i)];
    const double inv = 1.0 / std::sqrt(ss / double(k) + eps);
    for (int64_t i = 0; i < k; ++i) {
      const double g = one_plus ? 1.0 + gain[size_t(i)] : double(gain[size_t(i)]);
      r.set(size_t(m * k + i), residual[size_t(m * k + i)] * inv * g);
    }
  }
  return r;
}

// Row n of W times the reference x of row m: value, sum of |products| and the rounding allowance.
std::tuple<double, double, double> normed_dot(const std::vector<float>& w, const NormedReference& r, int64_t k, int64_t n,
                                              int64_t m) {
  const auto [v, bound] = dot(w, r.x, k, n, m);
  double ambiguous = 0;
  for (int64_t i = 0; i < k; ++i) ambiguous += std::fabs(double(w[size_t(n * k + i)])) * r.step[size_t(m * k + i)];
  return {v, bound, ambiguous};
}

// y (rows x s.out) against W times the norm of the stored stream rows, in float64 (after an
// update the prologue stored: the sandwich or the experts' tests).
void check_products_of_stored(const TestLinear& lin, const std::vector<float>& stored, const std::vector<float>& gain,
                              int64_t rows, const Shape& s, float eps, bool one_plus, const std::vector<float>& y) {
  const NormedReference ref = normed_reference(stored, gain, rows, s.in, eps, one_plus);
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t n = 0; n < s.out; ++n) {
      const auto [v, bound, ambiguous] = normed_dot(lin.values, ref, s.in, n, m);
      const double got = y[size_t(m * s.out + n)];
      ASSERT_LE(std::fabs(got - v), 1e-4 * bound + ambiguous + 1e-30)
          << s.out << "x" << s.in << " rows " << rows << " at " << m << "," << n << " got " << got << " want " << v;
    }
}

// The product after a prologue that updates the stream (Gemma3's sandwich norm, or an MoE layer's
// experts): `in` (its store set here, poisoned) run on `lin`, then the stream it read unchanged,
// every stored value within bound[i] of want[i] (float64), and the products of the rows as stored.
void check_updated_stream(const TestLinear& lin, cuda::NormedInput in, const cuda::DeviceBuffer<float>& res_d,
                          const std::vector<float>& residual, const std::vector<double>& want,
                          const std::vector<double>& bound, const std::vector<float>& gain, int64_t rows, const Shape& s) {
  auto store_d = test_support::poisoned<float>(size_t(rows * s.in));
  auto yd = test_support::poisoned<float>(size_t(rows * s.out));
  in.store = store_d.data();
  cuda::nvfp4_linear_normed(lin.device, in, rows, yd.data(), nullptr);
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> stored = store_d.to_host(), y = yd.to_host();
  ASSERT_EQ(res_d.to_host(), residual) << "the stream the blocks read must stay as it was";
  for (size_t i = 0; i < stored.size(); ++i)
    ASSERT_LE(std::fabs(double(stored[i]) - want[i]), bound[i])
        << s.out << "x" << s.in << " rows " << rows << " stored at " << i << " got " << stored[i] << " want " << want[i];
  check_products_of_stored(lin, stored, gain, rows, s, in.eps, in.one_plus, y);
}

// FP4LLM_NORM_DEFERRED (gemv_deferred_norm.cuh): the reference of a product of the deferred norm's
// rows, from the stream as the first product stored it. x = bf16(stream * gain), rounded in
// float32 on the GPU (the step allowance as in normed_reference), and inv = 1 / rms of the stored
// row, by which the second product scales its sums.
struct DeferredReference {
  NormedReference scaled;
  std::vector<double> inv;  // [rows]
};

DeferredReference deferred_reference(const std::vector<float>& stream, const std::vector<float>& gain, int64_t rows,
                                     int64_t k, float eps) {
  DeferredReference r{{std::vector<float>(size_t(rows * k)), std::vector<double>(size_t(rows * k))},
                      std::vector<double>(size_t(rows))};
  for (int64_t m = 0; m < rows; ++m) {
    double ss = 0;
    for (int64_t i = 0; i < k; ++i) {
      ss += double(stream[size_t(m * k + i)]) * stream[size_t(m * k + i)];
      r.scaled.set(size_t(m * k + i), double(stream[size_t(m * k + i)]) * gain[size_t(i)]);
    }
    r.inv[size_t(m)] = 1.0 / std::sqrt(ss / double(k) + eps);
  }
  return r;
}

// The norm split between the products around it: the first (o_proj, down_proj) adds into the
// stream and leaves the stream times the next norm's gains in BF16 with partial sums of squares; a
// plain and a gated product then take those rows and scale each token's sums by 1 / rms. Against
// float64: the stream as above, the BF16 rows, and both products of the stored stream normalised.
// Shapes: one and two token groups, 8- and 16-warp blocks, a ragged hidden size (1,040: 65 tiles
// of the first product, a ragged last chunk of the second) and a second product of one K split a
// block (256 features: 4 chunks).
TEST(GpuNvfp4Linear, DefersTheNormToTheNextProduct) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(19);
  Workspace w;
  const float eps = 1e-6f;
  struct Case {
    Shape first;   // out: the hidden size
    int64_t next;  // the second products' rows
  };
  for (const Case& c : std::vector<Case>{{{1024, 4096}, 3072}, {{1040, 2048}, 80}, {{256, 512}, 1536}, {{4096, 12288}, 1024}}) {
    const int64_t hidden = c.first.out;
    const TestLinear first = random_linear(c.first, rng, w);
    const Shape plain_shape{c.next, hidden};
    const TestLinear plain = random_linear(plain_shape, rng, w);
    const QuantizedLinear gate = test_support::random_nvfp4(c.next, hidden, rng), up = test_support::random_nvfp4(c.next, hidden, rng);
    const cuda::Nvfp4Tiles gated_tiles = cuda::make_gated_nvfp4_tiles(gate, up);
    const cuda::DeviceNvfp4Linear gated = cuda::upload_nvfp4(gated_tiles);
    const std::vector<float> wg = dequantized(gate), wu = dequantized(up);
    const std::vector<float> gain = random_bf16_values(size_t(hidden), rng);
    const auto gain_d = cuda::DeviceBuffer<float>::from_host(gain);
    const int64_t parts = cuda::deferred_norm_parts(first.device);
    ASSERT_EQ(parts, (hidden + 15) / 16);
    for (int64_t rows : {1, 3, 8, 9, 16}) {
      const std::string where = std::to_string(hidden) + "x" + std::to_string(c.first.in) + " then " +
                                std::to_string(c.next) + " rows " + std::to_string(rows);
      const std::vector<float> x = random_bf16_values(size_t(rows * c.first.in), rng);
      std::vector<float> before = random_bf16_values(size_t(rows * hidden), rng);
      for (float& v : before) v *= 5.0f;
      const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(x));
      auto stream_d = cuda::DeviceBuffer<float>::from_host(before);
      auto scaled_d = test_support::poisoned<__nv_bfloat16>(size_t(rows * hidden));
      auto sums_d = test_support::poisoned<float>(size_t(rows * parts));
      auto y_d = test_support::poisoned<float>(size_t(rows * c.next));
      auto act_d = test_support::poisoned<__nv_bfloat16>(size_t(rows * c.next));
      const cuda::DeferredNorm norm{sums_d.data(), parts, eps};
      cuda::nvfp4_linear_add_deferred_norm(first.device, xd.data(), rows, stream_d.data(), gain_d.data(), norm,
                                           scaled_d.data(), nullptr);
      cuda::nvfp4_linear_deferred_norm(plain.device, scaled_d.data(), rows, y_d.data(), norm, nullptr);
      cuda::nvfp4_gated_deferred_norm(gated, scaled_d.data(), rows, /*gelu=*/false, act_d.data(), norm, nullptr);
      FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<float> stream = stream_d.to_host(), y = y_d.to_host();
      const std::vector<__nv_bfloat16> scaled = scaled_d.to_host(), act = act_d.to_host();
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t n = 0; n < hidden; ++n) {
          const auto [product, bound] = dot(first.values, x, c.first.in, n, m);
          const double want = before[size_t(m * hidden + n)] + product;
          ASSERT_LE(std::fabs(stream[size_t(m * hidden + n)] - want), 1e-4 * bound + 1e-6 * std::fabs(want) + 1e-30)
              << where << ": stream at " << m << "," << n;
        }
      const DeferredReference ref = deferred_reference(stream, gain, rows, hidden, eps);
      for (size_t i = 0; i < scaled.size(); ++i)
        ASSERT_LE(std::fabs(double(__bfloat162float(scaled[i])) - ref.scaled.x[i]), ref.scaled.step[i])
            << where << ": BF16 row value " << i;
      for (int64_t m = 0; m < rows; ++m) {
        const double inv = ref.inv[size_t(m)];
        for (int64_t f = 0; f < c.next; ++f) {
          const auto [v, bound, ambiguous] = normed_dot(plain.values, ref.scaled, hidden, f, m);
          // float32 accumulation and ambiguous roundings, scaled by inv; inv's own float32 error.
          const double err = inv * (1e-4 * bound + ambiguous) + 1e-5 * std::fabs(v * inv) + 1e-30;
          ASSERT_LE(std::fabs(y[size_t(m * c.next + f)] - v * inv), err) << where << ": plain product at " << m << "," << f;
          const auto [g0, gb, ga] = normed_dot(wg, ref.scaled, hidden, f, m);
          const auto [u0, ub, ua] = normed_dot(wu, ref.scaled, hidden, f, m);
          const double g = g0 * inv, u = u0 * inv;
          const double act_want = g / (1.0 + std::exp(-g)), want = act_want * u;
          const double eg = inv * (1e-4 * gb + ga) + 1e-5 * std::fabs(g), eu = inv * (1e-4 * ub + ua) + 1e-5 * std::fabs(u);
          const double tol = 1.2 * eg * (std::fabs(u) + eu) + eu * (std::fabs(act_want) + 1e-3) + std::fabs(want) * 4e-3 + 1e-6;
          const double got = double(__bfloat162float(act[size_t(m * c.next + f)]));
          ASSERT_LE(std::fabs(got - want), tol) << where << ": gated at " << m << "," << f << " got " << got << " want " << want;
        }
      }
    }
  }
}

TEST(GpuNvfp4Linear, DeferredNormLimits) {
  EXPECT_TRUE(cuda::deferred_norm_supported(1));
  EXPECT_TRUE(cuda::deferred_norm_supported(cuda::kMaxDeferredNormRows));
  EXPECT_FALSE(cuda::deferred_norm_supported(cuda::kMaxDeferredNormRows + 1));
  EXPECT_FALSE(cuda::deferred_norm_supported(0));
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(20);
  Workspace w;
  const TestLinear lin = random_linear({64, 128}, rng, w);
  auto buf = cuda::DeviceBuffer<float>(size_t(64 * 17));
  auto bf = cuda::DeviceBuffer<__nv_bfloat16>(size_t(128 * 17));
  const cuda::DeferredNorm right{buf.data(), 4, 1e-6f}, wrong{buf.data(), 5, 1e-6f};
  EXPECT_THROW(cuda::nvfp4_linear_add_deferred_norm(lin.device, bf.data(), 17, buf.data(), buf.data(), right, bf.data(), nullptr),
               Error);
  EXPECT_THROW(cuda::nvfp4_linear_add_deferred_norm(lin.device, bf.data(), 1, buf.data(), buf.data(), wrong, bf.data(), nullptr),
               Error);
  EXPECT_THROW(cuda::nvfp4_linear_deferred_norm(lin.device, bf.data(), 1, buf.data(), {}, nullptr), Error);
  // As the next product, its 128 input features take 8 partial sums, not the 4 of its own rows.
  EXPECT_THROW(cuda::nvfp4_linear_deferred_norm(lin.device, bf.data(), 1, buf.data(), right, nullptr), Error);
}

TEST(GpuNvfp4Linear, NormedInputLimits) {
  EXPECT_TRUE(cuda::normed_input_supported(1, 4096));
  EXPECT_TRUE(cuda::normed_input_supported(cuda::kMaxNormedRows, 5120));
  EXPECT_FALSE(cuda::normed_input_supported(cuda::kMaxNormedRows + 1, 4096));
  EXPECT_FALSE(cuda::normed_input_supported(0, 4096));
  EXPECT_FALSE(cuda::normed_input_supported(1, 4104));   // not a multiple of 16
  EXPECT_FALSE(cuda::normed_input_supported(2, 16384));  // 64 KB of BF16 rows
}

TEST(GpuNvfp4Linear, NormalisesItsOwnInput) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(17);
  Workspace w;
  const float eps = 1e-6f;
  for (const Shape& s : std::vector<Shape>{{300, 1040}, {1024, 4096}, {48, 2048}, {6144, 4096}}) {
    const TestLinear lin = random_linear(s, rng, w);
    const std::vector<float> gain = random_bf16_values(size_t(s.in), rng);
    const auto gain_d = cuda::DeviceBuffer<float>::from_host(gain);
    for (int64_t rows = 1; rows <= cuda::kMaxNormedRows; ++rows)
      for (const bool one_plus : {false, true}) {
        // A residual stream of rows with different scales (the norm must take each row's own).
        std::vector<float> residual = random_bf16_values(size_t(rows * s.in), rng);
        for (int64_t m = 0; m < rows; ++m)
          for (int64_t i = 0; i < s.in; ++i) residual[size_t(m * s.in + i)] *= float(1 + 7 * m);
        const auto res_d = cuda::DeviceBuffer<float>::from_host(residual);
        const NormedReference ref = normed_reference(residual, gain, rows, s.in, eps, one_plus);
        for (const bool add : {false, true}) {
          const std::vector<float> before = add ? random_bf16_values(size_t(rows * s.out), rng) : std::vector<float>(size_t(rows * s.out));
          auto yd = add ? cuda::DeviceBuffer<float>::from_host(before) : test_support::poisoned<float>(size_t(rows * s.out));
          cuda::nvfp4_linear_normed(lin.device, {res_d.data(), gain_d.data(), eps, one_plus}, rows, yd.data(), nullptr,
                                    add ? cuda::LinearOutput::Add : cuda::LinearOutput::Store);
          FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
          const std::vector<float> y = yd.to_host();
          for (int64_t m = 0; m < rows; ++m)
            for (int64_t n = 0; n < s.out; ++n) {
              const auto [v, bound, ambiguous] = normed_dot(lin.values, ref, s.in, n, m);
              const double want = v + before[size_t(m * s.out + n)];
              const double got = y[size_t(m * s.out + n)];
              ASSERT_LE(std::fabs(got - want), 1e-4 * bound + ambiguous + 1e-6 * std::fabs(want) + 1e-30)
                  << s.out << "x" << s.in << " rows " << rows << (one_plus ? " (1+w)" : " w") << (add ? " add" : " store")
                  << " at " << m << "," << n << " got " << got << " want " << want;
            }
        }
      }
  }
}

// Gemma3's sandwich norms in the product's prologue: the residual row is first updated with the
// last product, normalised and scaled by (1 + delta_w), as add_and_norm does; the first block
// stores the updated rows, and every block normalises them. The stored rows against float64 (the
// float32 sum of squares behind delta's norm: up to about K * 2^-24 of the added term), then the
// product as above on the rows as stored.
TEST(GpuNvfp4Linear, NormalisesItsOwnInputAfterTheSandwichUpdate) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(19);
  Workspace w;
  const float eps = 1e-6f;
  for (const Shape& s : std::vector<Shape>{{300, 1040}, {5376, 2048}}) {
    const TestLinear lin = random_linear(s, rng, w);
    const std::vector<float> gain = random_bf16_values(size_t(s.in), rng), delta_gain = random_bf16_values(size_t(s.in), rng);
    const auto gain_d = cuda::DeviceBuffer<float>::from_host(gain), delta_gain_d = cuda::DeviceBuffer<float>::from_host(delta_gain);
    for (int64_t rows = 1; rows <= cuda::kMaxNormedRows; ++rows) {
      std::vector<float> residual = random_bf16_values(size_t(rows * s.in), rng), delta = random_bf16_values(size_t(rows * s.in), rng);
      // Each delta row its own scale: the norm must take that row's, not the stream's or another row's.
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t i = 0; i < s.in; ++i) delta[size_t(m * s.in + i)] *= float(30 * (1 + 7 * m));
      std::vector<double> term(residual.size());
      for (int64_t m = 0; m < rows; ++m) {
        double ss = 0;
        for (int64_t i = 0; i < s.in; ++i) ss += double(delta[size_t(m * s.in + i)]) * delta[size_t(m * s.in + i)];
        const double inv = 1.0 / std::sqrt(ss / double(s.in) + eps);
        for (int64_t i = 0; i < s.in; ++i) {
          const size_t at = size_t(m * s.in + i);
          term[at] = delta[at] * inv * (1.0 + delta_gain[size_t(i)]);
        }
      }
      std::vector<double> want(residual.size()), bound(residual.size());
      for (size_t i = 0; i < residual.size(); ++i) {
        want[i] = residual[i] + term[i];
        bound[i] = double(s.in) * std::ldexp(std::fabs(term[i]), -24) + 1e-6 * (std::fabs(residual[i]) + std::fabs(term[i])) + 1e-30;
      }
      const auto res_d = cuda::DeviceBuffer<float>::from_host(residual), delta_d = cuda::DeviceBuffer<float>::from_host(delta);
      cuda::NormedInput in{res_d.data(), gain_d.data(), eps, true};
      in.delta = delta_d.data(), in.delta_w = delta_gain_d.data();
      ASSERT_NO_FATAL_FAILURE(check_updated_stream(lin, in, res_d, residual, want, bound, gain, rows, s));
    }
  }
}

// An MoE layer's experts left for the next product (the backend's qkv after an MoE layer): the
// stream row plus the weighted sum of its top_k expert rows (in choice order, a zero weight's row
// not read: it holds NaN here), stored by the first block, then normalised as above.
TEST(GpuNvfp4Linear, NormalisesItsOwnInputAfterTheExperts) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(20);
  Workspace w;
  const float eps = 1e-6f;
  const int64_t top_k = 8;
  for (const Shape& s : std::vector<Shape>{{5120, 2048}, {300, 1040}}) {
    const TestLinear lin = random_linear(s, rng, w);
    const std::vector<float> gain = random_bf16_values(size_t(s.in), rng);
    const auto gain_d = cuda::DeviceBuffer<float>::from_host(gain);
    for (int64_t rows = 1; rows <= cuda::kMaxNormedRows; ++rows) {
      const std::vector<float> residual = random_bf16_values(size_t(rows * s.in), rng);
      std::vector<float> experts = random_bf16_values(size_t(rows * top_k * s.in), rng), weights(size_t(rows * top_k));
      std::uniform_real_distribution<float> share(0.01f, 0.3f);
      for (float& v : weights) v = share(rng);
      weights[size_t(top_k - 1)] = 0.0f;  // row 0's last choice: not read
      for (int64_t i = 0; i < s.in; ++i) experts[size_t((top_k - 1) * s.in + i)] = std::numeric_limits<float>::quiet_NaN();
      std::vector<double> want(residual.size()), bound(residual.size());
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t i = 0; i < s.in; ++i) {
          const size_t at = size_t(m * s.in + i);
          double sum = 0, size = std::fabs(residual[at]);
          for (int64_t c = 0; c < top_k; ++c) {
            const float wc = weights[size_t(m * top_k + c)];
            if (wc == 0.0f) continue;
            const double term = double(wc) * experts[size_t((m * top_k + c) * s.in + i)];
            sum += term, size += std::fabs(term);
          }
          // float32: at most 16 roundings, each 2^-24 of the terms' size (the sum of their magnitudes)
          want[at] = residual[at] + sum, bound[at] = 16 * std::ldexp(size, -24) + 1e-30;
        }
      const auto res_d = cuda::DeviceBuffer<float>::from_host(residual), experts_d = cuda::DeviceBuffer<float>::from_host(experts);
      const auto weights_d = cuda::DeviceBuffer<float>::from_host(weights);
      cuda::NormedInput in{res_d.data(), gain_d.data(), eps, false};
      in.delta = experts_d.data(), in.delta_weights = weights_d.data(), in.delta_count = top_k;
      ASSERT_NO_FATAL_FAILURE(check_updated_stream(lin, in, res_d, residual, want, bound, gain, rows, s));
    }
  }
}

TEST(GpuNvfp4Linear, GatedNormalisesItsOwnInput) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(18);
  Workspace w;
  const float eps = 1e-6f;
  for (const Shape& s : std::vector<Shape>{{1536, 1024}, {24, 4096}, {40, 1040}}) {
    const QuantizedLinear gate = test_support::random_nvfp4(s.out, s.in, rng), up = test_support::random_nvfp4(s.out, s.in, rng);
    const cuda::Nvfp4Tiles tiles = cuda::make_gated_nvfp4_tiles(gate, up);
    const cuda::DeviceNvfp4Linear dw = cuda::upload_nvfp4(tiles);
    w.fit(tiles);
    const std::vector<float> wg = dequantized(gate), wu = dequantized(up);
    const std::vector<float> gain = random_bf16_values(size_t(s.in), rng);
    const auto gain_d = cuda::DeviceBuffer<float>::from_host(gain);
    for (int64_t rows = 1; rows <= cuda::kMaxNormedRows; ++rows) {
      std::vector<float> residual = random_bf16_values(size_t(rows * s.in), rng);
      for (float& v : residual) v *= 5.0f;
      const auto res_d = cuda::DeviceBuffer<float>::from_host(residual);
      const NormedReference ref = normed_reference(residual, gain, rows, s.in, eps, false);
      auto out = test_support::poisoned<__nv_bfloat16>(size_t(rows * s.out));
      cuda::nvfp4_gated_normed(dw, {res_d.data(), gain_d.data(), eps, false}, rows, /*gelu=*/false, out.data(), nullptr);
      FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<__nv_bfloat16> got = out.to_host();
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t f = 0; f < s.out; ++f) {
          const auto [g, gb, ga] = normed_dot(wg, ref, s.in, f, m);
          const auto [u, ub, ua] = normed_dot(wu, ref, s.in, f, m);
          const double act = g / (1.0 + std::exp(-g)), want = act * u;
          // g and u each off by float32 accumulation and ambiguous roundings (SiLU's slope is at
          // most 1.1), then the BF16 output (2^-8 relative).
          const double eg = 1e-4 * gb + ga, eu = 1e-4 * ub + ua;
          const double err = 1.2 * eg * (std::fabs(u) + eu) + eu * (std::fabs(act) + 1e-3) + std::fabs(want) * 4e-3 + 1e-6;
          const double v = double(__bfloat162float(got[size_t(m * s.out + f)]));
          ASSERT_LE(std::fabs(v - want), err) << s.out << "x" << s.in << " rows " << rows << " at " << m << "," << f
                                              << " got " << v << " want " << want;
        }
    }
  }
}

// The qkv projection with q/k RMSNorm, RoPE and the KV-cache write as the backend runs it
// (nvfp4_linear, then the rope kernel). Against float64 on the host: q as float32, K and V in a
// BF16 cache or an FP8 one with scales, at random positions and cache slots. Each case runs twice
// with the outputs poisoned in between.
TEST(GpuNvfp4Linear, QkvRopeAndCacheWriteMatchFloat64) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(16);
  Workspace w;
  struct Heads { int64_t heads, kv, dim, in; };
  // K of 4096 and 2048 give 8 and 4 K splits (one and two tiles per block, as in Qwen3-8B); 20
  // tiles at K 256 leave a last block of 4 tiles.
  for (const Heads& hs : std::vector<Heads>{{4, 2, 128, 1040}, {8, 1, 64, 256}, {2, 2, 256, 512}, {4, 2, 128, 4096},
                                            {4, 2, 128, 2048}, {3, 1, 64, 256}}) {
    const int64_t all_heads = hs.heads + 2 * hs.kv, width = all_heads * hs.dim, half = hs.dim / 2;
    const TestLinear lin = random_linear(Shape{width, hs.in}, rng, w);
    const std::vector<float> q_norm = random_bf16_values(size_t(hs.dim), rng), k_norm = random_bf16_values(size_t(hs.dim), rng);
    std::vector<float> inv_freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = float(1.0 / std::pow(1e6, double(2 * i) / double(hs.dim)));
    const auto q_norm_d = cuda::DeviceBuffer<float>::from_host(q_norm), k_norm_d = cuda::DeviceBuffer<float>::from_host(k_norm);
    const auto inv_freq_d = cuda::DeviceBuffer<float>::from_host(inv_freq);
    for (int64_t rows : {1, 3, 9, 16, 17}) {
      const bool one_plus = rows % 2 == 1;
      const int64_t slots_total = 64;
      std::vector<int32_t> positions(static_cast<size_t>(rows));
      std::vector<int64_t> slots(static_cast<size_t>(rows)), all(static_cast<size_t>(slots_total));
      for (int64_t i = 0; i < slots_total; ++i) all[size_t(i)] = i;
      std::shuffle(all.begin(), all.end(), rng);
      for (int64_t t = 0; t < rows; ++t) positions[size_t(t)] = int32_t(rng() % 5000), slots[size_t(t)] = all[size_t(t)];
      const std::vector<float> x = random_bf16_values(size_t(rows * hs.in), rng);
      // float64 reference of every element [t][head][i], and how far float32 may take the kernels
      std::vector<double> want(size_t(rows * width)), carried(size_t(rows * width));
      double k_amax = 0, v_amax = 0;
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t head = 0; head < all_heads; ++head) {
          const size_t base = size_t(t * width + head * hs.dim);
          double ss = 0;
          for (int64_t i = 0; i < hs.dim; ++i) {
            const auto [v, bound] = dot(lin.values, x, hs.in, head * hs.dim + i, t);
            want[base + size_t(i)] = v, carried[base + size_t(i)] = 1e-4 * bound + 1e-30;
            ss += v * v;
          }
          const bool is_q = head < hs.heads, is_k = !is_q && head < hs.heads + hs.kv;
          if (is_q || is_k) {
            const double inv = 1.0 / std::sqrt(ss / double(hs.dim) + 1e-6);
            const std::vector<float>& g = is_q ? q_norm : k_norm;
            for (int64_t i = 0; i < half; ++i) {
              const double ga = one_plus ? 1.0 + g[size_t(i)] : g[size_t(i)];
              const double gb = one_plus ? 1.0 + g[size_t(i + half)] : g[size_t(i + half)];
              const double a = want[base + size_t(i)] * inv * ga, b = want[base + size_t(i + half)] * inv * gb;
              const double angle = double(float(positions[size_t(t)]) * inv_freq[size_t(i)]);  // float32, as the kernels
              want[base + size_t(i)] = a * std::cos(angle) - b * std::sin(angle);
              want[base + size_t(i + half)] = b * std::cos(angle) + a * std::sin(angle);
              // normalised heads: the product's relative error, on values of the gains' size
              carried[base + size_t(i)] = 1e-3 * (std::fabs(ga) + std::fabs(gb));
              carried[base + size_t(i + half)] = carried[base + size_t(i)];
            }
          }
          if (!is_q) {
            double& amax = is_k ? k_amax : v_amax;
            for (int64_t i = 0; i < hs.dim; ++i) amax = std::max(amax, std::fabs(want[base + size_t(i)]));
          }
        }
      for (const bool fp8 : {false, true}) {
        cuda::RopeCacheParams rp;
        rp.heads = hs.heads, rp.kv_heads = hs.kv, rp.head_dim = hs.dim, rp.one_plus = one_plus, rp.fp8 = fp8;
        rp.head_major_cache = cuda::kv_cache_head_major();  // FP4LLM_KV_LAYOUT, as the backend reads it
        rp.k_scale = fp8 ? float(k_amax / 400) : 1.0f, rp.v_scale = fp8 ? float(v_amax / 400) : 1.0f;  // no saturation
        const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(x));
        const auto pos_d = cuda::DeviceBuffer<int32_t>::from_host(positions);
        const auto slots_d = cuda::DeviceBuffer<int64_t>::from_host(slots);
        const size_t cache_elems = size_t(slots_total * hs.kv * hs.dim), elem = fp8 ? 1 : 2;
        std::vector<float> q;
        std::vector<uint8_t> k_cache, v_cache;
        for (int run = 0; run < 2; ++run) {
          auto qkv_d = test_support::poisoned<float>(size_t(rows * width));
          auto q_d = test_support::poisoned<float>(size_t(rows * hs.heads * hs.dim));
          auto k_d = test_support::poisoned<uint8_t>(cache_elems * elem), v_d = test_support::poisoned<uint8_t>(cache_elems * elem);
          const cuda::RopeCacheIo io{pos_d.data(), slots_d.data(), q_norm_d.data(), k_norm_d.data(), inv_freq_d.data(),
                                     q_d.data(), k_d.data(), v_d.data()};
          cuda::nvfp4_linear(lin.device, xd.data(), rows, qkv_d.data(), w.ws, nullptr);
          cuda::rope_and_cache(qkv_d.data(), rows, rp, io, nullptr);
          FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
          q = q_d.to_host(), k_cache = k_d.to_host(), v_cache = v_d.to_host();
        }
        for (int64_t t = 0; t < rows; ++t)
          for (int64_t head = 0; head < all_heads; ++head)
            for (int64_t i = 0; i < hs.dim; ++i) {
              const size_t at_ref = size_t(t * width + head * hs.dim + i);
              const double ref = want[at_ref];
              double got, tol = carried[at_ref];
              if (head < hs.heads) {
                got = q[size_t((t * hs.heads + head) * hs.dim + i)];
              } else {
                const bool is_k = head < hs.heads + hs.kv;
                const int64_t kv_head = is_k ? head - hs.heads : head - hs.heads - hs.kv;
                const size_t at = size_t(
                    cuda::cache_row_offset(slots[size_t(t)], kv_head, hs.kv, hs.dim, rp.head_major_cache) + i);
                const std::vector<uint8_t>& c = is_k ? k_cache : v_cache;
                const float scale = is_k ? rp.k_scale : rp.v_scale;
                uint16_t b = 0;
                if (!fp8) std::memcpy(&b, &c[2 * at], 2);
                got = fp8 ? double(e4m3_to_float(c[at])) * scale : double(bf16_to_float(b));
                // BF16: half an ulp (2^-9 relative); E4M3: one step of its 3-bit mantissa (a value
                // near a rounding boundary may go either way), and its subnormal step.
                tol += fp8 ? std::ldexp(std::fabs(ref), -3) + std::ldexp(double(scale), -9) : std::ldexp(std::fabs(ref), -8);
              }
              ASSERT_LE(std::fabs(got - ref), tol)
                  << hs.heads << "/" << hs.kv << "x" << hs.dim << " rows " << rows << (fp8 ? " fp8" : " bf16")
                  << " token "
                  << t << " head " << head << " dim " << i << " got " << got << " want " << ref;
            }
      }
    }
  }
}

// FP4LLM_WGMMA_PIPELINE=layout-written: a layer's chain of products (o_proj's residual and norm,
// gate/up, down_proj's residual and norm, the next qkv) with each norm and the gated epilogue
// also writing their outputs in the pipelined GEMV's x layout for the next product, against the
// same chain with every product laying its x out itself (=layout's kernel, which the other GEMV
// tests check against float64): the same x values reach the same kernel, so every output must be
// identical to the bit. Without that knob both runs take the same path (and must agree too).
TEST(GpuNvfp4Linear, InputsLaidOutByTheirWritersChangeNoBit) {
  FP4LLM_REQUIRE_GPU();
  const char* knob = std::getenv("FP4LLM_WGMMA_PIPELINE");
  int device = 0, major = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  FP4LLM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  // (The unclustered mode, the dense models' default or =layout-unclustered, lays them out too,
  // whether the next product takes them or not.)
  std::mt19937 rng(29);
  Workspace w;
  const bool written = ((knob && std::string(knob) == "layout-written") || w.ws.pipeline_unclustered) && major >= 9;
  // FP4LLM_WGMMA_PIPELINE_N32=1: 17-32 rows too, in the layout of 32 tokens.
  const char* n32 = std::getenv("FP4LLM_WGMMA_PIPELINE_N32");
  const int64_t fewest_written = n32 && std::string(n32) == "1" ? 17 : 33;
  const int64_t hidden = 512, attn = 384, inter = 704, qkv_out = 640;
  const TestLinear o = random_linear({hidden, attn}, rng, w), down = random_linear({hidden, inter}, rng, w);
  const TestLinear qkv = random_linear({qkv_out, hidden}, rng, w);
  const QuantizedLinear gate = test_support::random_nvfp4(inter, hidden, rng), up = test_support::random_nvfp4(inter, hidden, rng);
  const cuda::Nvfp4Tiles gated_tiles = cuda::make_gated_nvfp4_tiles(gate, up);
  const cuda::DeviceNvfp4Linear gate_up = cuda::upload_nvfp4(gated_tiles);
  w.fit(gated_tiles);
  const auto gains = cuda::DeviceBuffer<float>::from_host(random_bf16_values(size_t(hidden), rng));
  for (int64_t rows : {17, 32, 33, 48, 64}) {
    const auto attn_d = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(random_bf16_values(size_t(rows * attn), rng)));
    const std::vector<float> stream0 = random_bf16_values(size_t(rows * hidden), rng);
    std::vector<float> results[2];
    for (int run = 0; run < 2; ++run) {
      const bool writers = run == 1;
      auto stream_d = cuda::DeviceBuffer<float>::from_host(stream0);
      auto h = test_support::poisoned<__nv_bfloat16>(size_t(rows * hidden));
      auto act = test_support::poisoned<__nv_bfloat16>(size_t(rows * inter));
      auto y = test_support::poisoned<float>(size_t(rows * qkv_out));
      cuda::DeviceBuffer<float> product(size_t(rows * hidden));
      const cuda::ResidualNorm r{stream_d.data(), nullptr, gains.data(), 1e-6f, false, h.data(), writers};
      cuda::nvfp4_linear_residual(o.device, attn_d.data(), rows, product.data(), r, w.ws, nullptr);
      if (writers && written && rows >= fewest_written) {
        EXPECT_NE(w.ws.next_input.laid_out, nullptr) << "rows " << rows << ": the norm laid h out";
      }
      cuda::nvfp4_gated(gate_up, h.data(), rows, /*gelu=*/false, act.data(), nullptr, w.ws, nullptr);
      if (written && rows >= fewest_written) {
        EXPECT_NE(w.ws.next_input.laid_out, nullptr) << "rows " << rows << ": the epilogue laid act out";
      }
      if (!writers) w.ws.next_input = {};  // the layout kernel's path for down_proj too
      cuda::nvfp4_linear_residual(down.device, act.data(), rows, product.data(), r, w.ws, nullptr);
      cuda::nvfp4_linear(qkv.device, h.data(), rows, y.data(), w.ws, nullptr);
      FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
      for (const float v : stream_d.to_host()) results[run].push_back(v);
      for (const float v : y.to_host()) results[run].push_back(v);
      for (const __nv_bfloat16 v : act.to_host()) results[run].push_back(__bfloat162float(v));
    }
    ASSERT_EQ(results[0].size(), results[1].size());
    for (size_t i = 0; i < results[0].size(); ++i) {
      ASSERT_TRUE(std::isfinite(results[1][i])) << "rows " << rows << " at " << i;
      ASSERT_EQ(std::memcmp(&results[0][i], &results[1][i], sizeof(float)), 0)
          << "rows " << rows << " at " << i << ": " << results[0][i] << " against " << results[1][i];
    }
  }
}

// Gated tiles: out = act(x Wg^T) * (x Wu^T) in BF16, SiLU (Qwen3) and GELU-tanh (Gemma3).
TEST(GpuNvfp4Linear, GatedEpilogueAppliesTheActivation) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(13);
  Workspace w;
  // 4608 gated rows: 576 tiles, so the wgmma kernel takes two warpgroups per block there too.
  for (const Shape& s : std::vector<Shape>{{1536, 1024}, {24, 80}, {256, 12288}, {4608, 1024}}) {
    const QuantizedLinear gate = test_support::random_nvfp4(s.out, s.in, rng), up = test_support::random_nvfp4(s.out, s.in, rng);
    const cuda::Nvfp4Tiles tiles = cuda::make_gated_nvfp4_tiles(gate, up);
    const cuda::DeviceNvfp4Linear dw = cuda::upload_nvfp4(tiles);
    w.fit(tiles);
    const std::vector<float> wg = dequantized(gate), wu = dequantized(up);
    for (bool gelu : {false, true})
      for (int64_t rows : {1, 9, 32, 33, 64, 100}) {
        const std::vector<float> x = random_bf16_values(size_t(rows * s.in), rng);
        const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(x));
        auto out = test_support::poisoned<__nv_bfloat16>(size_t(rows * s.out));
        cuda::DeviceBuffer<float> scratch(size_t(rows * 2 * s.out));
        cuda::nvfp4_gated(dw, xd.data(), rows, gelu, out.data(), scratch.data(), w.ws, nullptr);
        FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<__nv_bfloat16> got = out.to_host();
        const double tol = rows > cuda::kMaxDecodeRows ? 6e-3 : 1e-4;
        for (int64_t m = 0; m < rows; ++m)
          for (int64_t f = 0; f < s.out; ++f) {
            const auto [g, gb] = dot(wg, x, s.in, f, m);
            const auto [u, ub] = dot(wu, x, s.in, f, m);
            const double act = gelu ? 0.5 * g * (1.0 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)))
                                    : g / (1.0 + std::exp(-g));
            const double want = act * u;
            // Rounding of g and u (tol * bound each), then of the BF16 output (2^-8 relative).
            const double err = tol * (gb * std::fabs(u) * 1.2 + ub * (std::fabs(act) + 1e-3)) + std::fabs(want) * 4e-3 + 1e-6;
            const double v = double(__bfloat162float(got[size_t(m * s.out + f)]));
            ASSERT_TRUE(std::isfinite(v)) << "gated " << s.out << "x" << s.in << " rows " << rows;
            ASSERT_LE(std::fabs(v - want), err) << (gelu ? "gelu " : "silu ") << s.out << "x" << s.in << " rows " << rows
                                                << " at " << m << "," << f << " got " << v << " want " << want;
          }
      }
  }
}

// The FP8 prefill product (fp8_gemm.hpp, FP4LLM_FP8_PREFILL=1) against the CPU backend's
// linear_fp8 on the same BF16 activations: both quantize the weight rows and the tokens to E4M3
// by the same rules, so only the sums differ (order, and the tensor cores' accumulation), bounded
// by the sum of |products| of the E4M3 operands computed here from number_formats' rounding. Each
// token has one large value, so the per-token scales differ from row to row.
TEST(GpuNvfp4Linear, Fp8PrefillMatchesTheCpuEmulation) {
  FP4LLM_REQUIRE_GPU();
  int device = 0, major = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
  if (major != 9) GTEST_SKIP() << "cuBLASLt's outer-vector FP8 scales exist on sm_90 only";
  std::mt19937 rng(23);
  Workspace w;
  cuda::Fp8Gemm fp8;
  struct {
    double error = 0;
    std::string where;
  } worst;
  const std::vector<Shape> shapes = {{64, 128}, {208, 400}, {768, 208}, {4100, 208}, {1024, 4096}};
  for (const Shape& s : shapes) {
    const TestLinear lin = random_linear(s, rng, w);
    for (int64_t rows : {65, 100, 257}) {
      for (bool add : {false, true}) {
        std::vector<float> x = random_bf16_values(size_t(rows * s.in), rng);
        for (int64_t m = 0; m < rows; ++m) x[size_t(m * s.in + (m * 7) % s.in)] = float(8 << (m % 5));  // exact in BF16
        const std::vector<float> before = add ? random_bf16_values(size_t(rows * s.out), rng) : std::vector<float>(size_t(rows * s.out));
        const auto xd = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(x));
        auto yd = add ? cuda::DeviceBuffer<float>::from_host(before) : test_support::poisoned<float>(size_t(rows * s.out));
        fp8.multiply(lin.device, xd.data(), rows, yd.data(), add ? 1.0f : 0.0f,
                     reinterpret_cast<uint8_t*>(w.ws.dequantized.data()), nullptr);
        FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<float> y = yd.to_host();
        std::vector<float> ref(size_t(rows * s.out));
        cpu::linear_fp8(lin.q, x.data(), rows, ref.data());
        // The E4M3 operands, for the bound.
        std::vector<float> w8(lin.values.size()), x8(x.size()), w_scale(static_cast<size_t>(s.out)),
            x_scale(static_cast<size_t>(rows));
        for (int64_t n = 0; n < s.out; ++n) {
          w_scale[size_t(n)] = cpu::fp8_row_scale(lin.q, n);
          for (int64_t k = 0; k < s.in; ++k)
            w8[size_t(n * s.in + k)] = e4m3_to_float(float_to_e4m3(lin.values[size_t(n * s.in + k)] / w_scale[size_t(n)]));
        }
        for (int64_t m = 0; m < rows; ++m) {
          float amax = 0;
          for (int64_t k = 0; k < s.in; ++k) amax = std::max(amax, std::fabs(x[size_t(m * s.in + k)]));
          x_scale[size_t(m)] = e4m3_token_scale(amax);
          for (int64_t k = 0; k < s.in; ++k)
            x8[size_t(m * s.in + k)] = e4m3_to_float(float_to_e4m3(x[size_t(m * s.in + k)] / x_scale[size_t(m)]));
        }
        for (int64_t m = 0; m < rows; ++m)
          for (int64_t n = 0; n < s.out; ++n) {
            const auto [_, bound] = dot(w8, x8, s.in, n, m);
            const double scale = double(w_scale[size_t(n)]) * x_scale[size_t(m)];
            const double want = double(ref[size_t(m * s.out + n)]) + before[size_t(m * s.out + n)];
            const float got = y[size_t(m * s.out + n)];
            ASSERT_TRUE(std::isfinite(got)) << s.out << "x" << s.in << " rows " << rows << " at " << m << "," << n;
            // FP8 tensor-core sums keep about 14 bits between cuBLASLt's promotions to FP32
            // (DeepSeek-V3 report, section 3.3.2); a wrong scale or layout is off by O(bound).
            const double error = (std::fabs(got - want) - 1e-6 * std::fabs(want)) / (bound * scale + 1e-30);
            if (error > worst.error) {
              char where[160];
              std::snprintf(where, sizeof where, "%lldx%lld rows %lld%s at %lld,%lld got %.9g want %.9g",
                            (long long)s.out, (long long)s.in, (long long)rows, add ? " add" : "", (long long)m,
                            (long long)n, double(got), want);
              worst = {error, where};
            }
          }
      }
    }
  }
  std::printf("largest error of the FP8 GEMM, in units of sum |w8 x8| x scales: %.2e (%s)\n", worst.error,
              worst.where.c_str());
  EXPECT_LE(worst.error, 2e-3) << worst.where;
}
