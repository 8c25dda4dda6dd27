// The options `run` and `serve` share for choosing and shaping the backend, with vLLM's names:
// --device, --kv-cache-dtype, --enforce-eager, --quantize-lm-head, --tensor-parallel-size,
// --enable-expert-parallel; and --offload-embeddings (llama.cpp's placement of the token
// embeddings, which vLLM does not offer).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "backend/backend.hpp"
#include "backend/backend_factory.hpp"

namespace fp4llm::cli {

struct BackendFlags {
  std::string device = "cpu", kv_cache_dtype = "fp8";
  bool enforce_eager = false, quantize_lm_head = false, expert_parallel = false, offload_embeddings = false;
  int64_t tensor_parallel_size = 1;

  // Throws Error for an unknown device or cache type, or a CUDA device this build cannot use.
  void validate() const;
  KvCacheDtype cache_dtype() const;
  // What make_backend needs, for a cache already sized.
  BackendOptions options(const KvCacheConfig& cache, bool progress) const;
  // With --tensor-parallel-size above 1: what each rank holds, one line on stderr. Throws Error
  // when the model does not split so.
  void print_tensor_parallel_plan(const ModelConfig& config) const;
};

void add_backend_flags(CLI::App* cmd, BackendFlags& flags);

// "fp8" or "bf16" (the value of --kv-cache-dtype), else Error.
KvCacheDtype parse_kv_cache_dtype(const std::string& name);

}  // namespace fp4llm::cli
