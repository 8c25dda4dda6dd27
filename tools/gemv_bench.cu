// Micro-benchmark of the decode GEMV (nvfp4_linear.cu, compiled in here with whatever
// -DFP4LLM_GEMV_* the build passes) on Qwen3-8B's four projection shapes, random weights, as
// microseconds per call and the fraction of the measured copy bandwidth. Enough copies of each
// weight rotate that none is served from L2 (as in a real step, 36 layers apart).
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/gemv_bench.cu -lcublas -lcublasLt
// (tools/gpu_gemv_sweep.sh builds and runs the variants). With --prefill it times the prefill
// path instead (2,048 rows: dequantize to BF16 scratch + cuBLAS) against cuBLAS alone on a BF16
// weight, as TFLOP/s, to split the prefill target's gap between the extra pass and the GEMM.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <stdexcept>
#include <vector>

#include "backend/cuda/fp8_gemm.cu"       // the FP8 prefill path nvfp4_linear.cu may take
#include "backend/cuda/layer_kernels.cu"  // nvfp4_linear_add_norm's two-launch path
#include "backend/cuda/nvfp4_linear.cu"

namespace fp4llm::cuda {
void throw_cuda_error(const char* status, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(status) + " in " + call + " at " + file + ":" + std::to_string(line));
}
void throw_error(const std::string& message) { throw std::runtime_error(message); }
}  // namespace fp4llm::cuda

namespace gemv_bench {
using namespace fp4llm::cuda;

__global__ void fill_words(uint32_t* p, size_t n, uint32_t seed, uint32_t mask, uint32_t add) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 15, x *= 2246822519u, x ^= x >> 13;
    p[i] = (x & mask) + add;
  }
}

DeviceNvfp4Linear random_weight(int64_t n, int64_t k, bool gated, uint32_t seed) {
  DeviceNvfp4Linear w;
  w.out_features = n, w.in_features = k, w.gated = gated;
  w.row_tiles = (n + 15) / 16, w.k_chunks = (k + 63) / 64;
  const size_t slots = size_t(w.row_tiles * w.k_chunks * 32);
  w.packed = DeviceBuffer<uint8_t>(slots * 16);
  w.scales = DeviceBuffer<uint16_t>(slots);
  fill_words<<<1024, 256>>>(reinterpret_cast<uint32_t*>(w.packed.data()), slots * 4, seed, 0xFFFFFFFFu, 0);
  fill_words<<<1024, 256>>>(reinterpret_cast<uint32_t*>(w.scales.data()), slots / 2, seed + 1, 0x07070707u, 0x30303030u);
  w.tile_scales = DeviceBuffer<float>::from_host(std::vector<float>(size_t(2 * w.row_tiles), 1e-3f));
  return w;
}

double copy_bandwidth() {
  const size_t bytes = size_t(1) << 30;
  DeviceBuffer<uint8_t> a(bytes), b(bytes);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0), cudaEventCreate(&e1);
  FP4LLM_CUDA_CHECK(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
  cudaEventRecord(e0);
  for (int i = 0; i < 5; ++i) cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(e1);
  cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  return 2.0 * 5 * double(bytes) / (ms * 1e-3) / 1e9;
}

}  // namespace gemv_bench

namespace gemv_bench {

// Microseconds per call of `call`, averaged over `reps` (warmed up by the caller), timed on `stream`.
template <typename F>
double time_us(F&& call, int reps, cudaStream_t stream = nullptr) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0), cudaEventCreate(&e1);
  cudaEventRecord(e0, stream);
  for (int r = 0; r < reps; ++r) call();
  cudaEventRecord(e1, stream);
  FP4LLM_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  return ms * 1e3 / reps;
}

struct Shape {
  const char* name;
  int64_t n, k;
  bool gated;
};

// A layer's four products in their order, over enough layers of distinct weights that L2 holds
// none, on a stream of its own and replayed from a CUDA graph as a decode step is, so that what
// one product's kernel does to the next (dependent launch, the SMs' shared-memory carveout)
// counts, which timing each product alone does not. Microseconds a layer.
double sequence_us(const std::vector<Shape>& shapes, int64_t rows, LinearWorkspace& ws) {
  double layer_bytes = 0;
  int64_t max_n = 0, max_k = 0;
  for (const Shape& s : shapes) {
    layer_bytes += double(s.n) * double(s.k) * 0.5625;
    max_n = std::max(max_n, s.n), max_k = std::max(max_k, s.k);
  }
  const int layers = std::max(4, int(1.2e9 / layer_bytes));
  std::vector<std::vector<DeviceNvfp4Linear>> layer_weights(static_cast<size_t>(layers));
  for (int l = 0; l < layers; ++l)
    for (size_t i = 0; i < shapes.size(); ++i)
      layer_weights[size_t(l)].push_back(random_weight(shapes[i].n, shapes[i].k, shapes[i].gated, uint32_t(101 + 17 * l + int(i))));
  DeviceBuffer<__nv_bfloat16> x(size_t(rows * max_k)), act(size_t(rows * max_n / 2));
  DeviceBuffer<float> y(size_t(rows * max_n));
  fill_words<<<256, 256>>>(reinterpret_cast<uint32_t*>(x.data()), x.size() / 2, 3, 0x3F7F3F7Fu, 0);
  cudaStream_t stream = nullptr;
  FP4LLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  early_launch_all_default().store(true);  // as the CUDA backend sets it for dense models
  const auto step = [&] {
    for (int l = 0; l < layers; ++l)
      for (size_t i = 0; i < shapes.size(); ++i) {
        const DeviceNvfp4Linear& w = layer_weights[size_t(l)][i];
        if (shapes[i].gated) nvfp4_gated(w, x.data(), rows, false, act.data(), nullptr, ws, stream);
        else nvfp4_linear(w, x.data(), rows, y.data(), ws, stream);
      }
  };
  step();  // first launches: attributes set, scratch allocated outside the capture
  FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  FP4LLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  step();
  FP4LLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  FP4LLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  FP4LLM_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  const double us = time_us([&] { FP4LLM_CUDA_CHECK(cudaGraphLaunch(exec, stream)); }, 5, stream);
  cudaGraphExecDestroy(exec), cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  early_launch_all_default().store(false);
  return us / layers;
}

void prefill_table() {
  const int64_t rows = 2048;
  LinearWorkspace ws;
  FP4LLM_CUBLAS_CHECK(cublasCreate(&ws.cublas));
  std::printf("| shape (2,048 rows) | NVFP4 path us | TFLOP/s | cuBLAS BF16 alone us | TFLOP/s | extra pass |\n"
              "|---|---|---|---|---|---|\n");
  struct Shape { const char* name; int64_t n, k; };
  for (const Shape& s : {Shape{"qkv 6144x4096", 6144, 4096}, Shape{"o 4096x4096", 4096, 4096},
                         Shape{"gate_up 24576x4096", 24576, 4096}, Shape{"down 4096x12288", 4096, 12288}}) {
    const DeviceNvfp4Linear w = random_weight(s.n, s.k, false, 5);
    ws.dequantized.ensure(size_t(w.row_tiles * 16 * w.k_chunks * 64));
    DeviceBuffer<__nv_bfloat16> x(size_t(rows * s.k)), w16(size_t(s.n * s.k));
    fill_words<<<256, 256>>>(reinterpret_cast<uint32_t*>(x.data()), x.size() / 2, 3, 0x3F7F3F7Fu, 0);
    fill_words<<<256, 256>>>(reinterpret_cast<uint32_t*>(w16.data()), w16.size() / 2, 4, 0x3F7F3F7Fu, 0);
    DeviceBuffer<float> y(size_t(rows * s.n));
    const double flops = 2.0 * double(rows) * double(s.n) * double(s.k);
    const auto with_path = [&] { nvfp4_linear(w, x.data(), rows, y.data(), ws, nullptr); };
    const auto alone_call = [&] { gemm_bf16(ws.cublas, w16.data(), s.k, s.n, s.k, x.data(), rows, y.data(), CUDA_R_32F, s.n, 0.0f, nullptr); };
    with_path(), alone_call();  // warm-up: cuBLAS picks its kernels
    const double path = time_us(with_path, 20), alone = time_us(alone_call, 20);
    std::printf("| %s | %.1f | %.0f | %.1f | %.0f | %.0f%% |\n", s.name, path, flops / path / 1e6, alone,
                flops / alone / 1e6, 100.0 * (path - alone) / path);
  }
  cublasDestroy(ws.cublas);
}

}  // namespace gemv_bench

int main(int argc, char** argv) {
  using namespace gemv_bench;
  try {
    if (argc > 1 && std::string(argv[1]) == "--prefill") {
      prefill_table();
      return 0;
    }
    const double bw = copy_bandwidth();
    std::printf("stages %d x chunks %d; copy bandwidth %.0f GB/s\n", kStages, kStageChunks, bw);
    if (wgmma_pipeline_requested() || wgmma_pipeline_plain_only() || pipelined_gemv_default(false)) {
      const ClusterCapacity c = pipeline_cluster_capacity<64>();
      const auto [stages, raw] = pipeline_stage_counts();
      std::printf("pipelined GEMV: %d stages, %d of x; clusters at once: %lld of 2, %lld of 4 (%lld SMs)\n", stages, raw,
                  (long long)c.two, (long long)c.four, (long long)c.one);
    }
    std::printf("| shape | rows | us | GB/s | of copy bandwidth |\n|---|---|---|---|---|\n");
    LinearWorkspace ws;
    ws.pipeline_unclustered = pipelined_gemv_default(false);  // both shape sets are dense models'
    FP4LLM_CUBLAS_CHECK(cublasCreate(&ws.cublas));
    double total_us[3] = {};
    // GEMV_BENCH_SHAPES=gemma3-27b: Gemma3-27B's four products instead of Qwen3-8B's.
    const char* shapes_env = std::getenv("GEMV_BENCH_SHAPES");
    const bool gemma = shapes_env && std::string(shapes_env) == "gemma3-27b";
    const std::vector<Shape> shapes =
        gemma ? std::vector<Shape>{{"qkv 8192x5376", 8192, 5376, false}, {"o 5376x4096", 5376, 4096, false},
                                   {"gate_up 43008x5376", 43008, 5376, true}, {"down 5376x21504", 5376, 21504, false}}
              : std::vector<Shape>{{"qkv 6144x4096", 6144, 4096, false}, {"o 4096x4096", 4096, 4096, false},
                                   {"gate_up 24576x4096", 24576, 4096, true}, {"down 4096x12288", 4096, 12288, false}};
    // GEMV_BENCH_PROFILE=1 (under Nsight Compute, which profiles every launch): 64 rows only, two
    // copies of each weight, a few calls each, no sequence mode; its times are not the table's.
    const bool profile = std::getenv("GEMV_BENCH_PROFILE") != nullptr;
    for (const Shape& s : shapes) {
      const double bytes = double(s.n) * double(s.k) * 0.5625;
      const int copies = profile ? 2 : int(std::max(2.0, 512e6 / bytes));
      std::vector<DeviceNvfp4Linear> ws_copies;
      for (int c = 0; c < copies; ++c) ws_copies.push_back(random_weight(s.n, s.k, s.gated, uint32_t(7 + 13 * c)));
      const int64_t rows_list[3] = {1, 16, 64};
      for (int ri = profile ? 2 : 0; ri < 3; ++ri) {
        const int64_t rows = rows_list[ri];
        DeviceBuffer<__nv_bfloat16> x(size_t(rows * s.k));
        fill_words<<<256, 256>>>(reinterpret_cast<uint32_t*>(x.data()), x.size() / 2, 3, 0x3F7F3F7Fu, 0);
        DeviceBuffer<float> y(size_t(rows * s.n));
        DeviceBuffer<__nv_bfloat16> act(size_t(rows * s.n / 2));
        const auto call = [&](const DeviceNvfp4Linear& w) {
          if (s.gated) nvfp4_gated(w, x.data(), rows, false, act.data(), nullptr, ws, nullptr);
          else nvfp4_linear(w, x.data(), rows, y.data(), ws, nullptr);
        };
        for (int c = 0; c < copies; ++c) call(ws_copies[size_t(c)]);
        int next = 0;
        const double us = time_us([&] { call(ws_copies[size_t(next++ % copies)]); }, (profile ? 2 : 20) * copies);
        total_us[ri] += us;
        std::printf("| %s | %lld | %.1f | %.0f | %.1f%% |\n", s.name, (long long)rows, us, bytes / us / 1e3,
                    100.0 * bytes / us / 1e3 / bw);
      }
    }
    std::printf("per layer (4 projections): rows 1 %.1f us, rows 16 %.1f us, rows 64 %.1f us\n", total_us[0], total_us[1],
                total_us[2]);
    if (!profile)
      std::printf("in sequence (a layer's products in order, replayed from a graph): rows 64 %.1f us a layer, rows 48 %.1f\n",
                  sequence_us(shapes, 64, ws), sequence_us(shapes, 48, ws));
    cublasDestroy(ws.cublas);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
