// The one place a `--device` name becomes a backend, so the CLI commands, the server and the
// test tools choose between the CPU reference and the CUDA backend the same way.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.hpp"
#include "model/model_weights.hpp"

namespace fp4llm {

struct BackendOptions {
  std::string device = "cpu";  // "cpu" or "cuda"
  KvCacheConfig cache;
  bool progress = true;        // progress bar while weights move to the GPU
  bool enforce_eager = false;  // CUDA: no graph capture of decode steps
  int64_t tensor_parallel_size = 1;  // ranks the model is split over: GPUs (NCCL) or CPU threads
  bool expert_parallel = false;      // MoE with tensor parallelism: whole experts per GPU
  bool offload_embeddings = false;   // CUDA: the embedding table in pinned host memory
};

// `weights` must outlive the backend. Throws Error for an unknown device, for "cuda" in a build
// without the CUDA backend or on a machine without a GPU, and for a model the device cannot run.
std::unique_ptr<Backend> make_backend(const ModelWeights& weights, const BackendOptions& options);

// Why the CUDA backend cannot be used here, or an empty string when it can.
std::string cuda_unavailable_reason();

struct GpuMemoryInfo {
  uint64_t free = 0, total = 0;
};
// Free and total memory of the current GPU; throws Error where the CUDA backend cannot run.
GpuMemoryInfo gpu_memory_info();

}  // namespace fp4llm
