// `fp4llm bench`: decode and prefill speed of the CUDA backend on a real model or on a
// synthetic one with a real model's shapes, reported against the bandwidth floor (every weight
// byte read once per decode step). Plain C++ interface; the runner lives in the CUDA backend.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fp4llm {

struct BenchOptions {
  std::string model;      // a model folder, or empty with `synthetic`
  std::string synthetic;  // qwen3-8b, qwen3-0.6b, gemma3-27b, gemma3-1b, ...
  std::vector<int64_t> batches = {1, 2, 4, 8, 16, 32, 64};
  int64_t input_len = 128, output_len = 128, prefill_len = 2048;
  int64_t max_num_batched_tokens = 0;  // prompt tokens per step (chunked prefill); 0: whole prompts
  bool fp8_kv = true;
  bool progress = true;
  bool enforce_eager = false;
  bool quantize_lm_head = false;  // NVFP4 lm_head (random for synthetic models, quantized at load otherwise)
  bool profile = false;  // per-stage GPU time of decode steps (eager launches)
  int64_t tensor_parallel_size = 1;  // GPUs the model is split over (figures per GPU: rank 0's)
  bool expert_parallel = false;      // MoE with tensor parallelism: whole experts per GPU
  bool offload_embeddings = false;   // the embedding table in pinned host memory
  bool window_pool = true;  // sliding-window layers keep only their window (serve's default)
  // Non-empty: every kernel of a few replayed decode steps per batch size and of one prefill
  // recorded on the GPU's clock (CUPTI), written to this CSV file and reduced to each kernel's
  // share of the step.
  std::string trace_path;
};

// Names accepted by --synthetic.
std::vector<std::string> synthetic_model_names();

// Runs the benchmark and returns the results (see docs/PERFORMANCE.md for the fields).
// Throws Error where the CUDA backend is unavailable.
nlohmann::json run_benchmark(const BenchOptions& options);

}  // namespace fp4llm
