#include "cli/backend_flags.hpp"

#include "backend/backend_factory.hpp"
#include "model/tensor_parallel.hpp"
#include "util/error.hpp"

namespace fp4llm::cli {

KvCacheDtype parse_kv_cache_dtype(const std::string& name) {
  if (name == "fp8") return KvCacheDtype::Fp8E4M3;
  if (name == "bf16") return KvCacheDtype::Bf16;
  fail("--kv-cache-dtype must be fp8 or bf16, got '{}'", name);
}

void BackendFlags::validate() const {
  if (device != "cpu" && device != "cuda") fail("--device must be cpu or cuda, got '{}'", device);
  if (device == "cuda")
    if (const std::string why = cuda_unavailable_reason(); !why.empty()) fail("--device cuda: {}", why);
  parse_kv_cache_dtype(kv_cache_dtype);
  if (tensor_parallel_size < 1) fail("--tensor-parallel-size must be at least 1, got {}", tensor_parallel_size);
}

KvCacheDtype BackendFlags::cache_dtype() const { return parse_kv_cache_dtype(kv_cache_dtype); }

BackendOptions BackendFlags::options(const KvCacheConfig& cache, bool progress) const {
  return {device, cache, progress, enforce_eager, tensor_parallel_size, expert_parallel, offload_embeddings};
}

void BackendFlags::print_tensor_parallel_plan(const ModelConfig& config) const {
  if (tensor_parallel_size == 1) return;
  const TensorParallelPlan plan = TensorParallelPlan::make(config, tensor_parallel_size, expert_parallel);
  fmt::print(stderr, "{} ({})\n", plan.describe(config), device == "cuda" ? "one GPU each, NCCL" : "CPU threads");
}

void add_backend_flags(CLI::App* cmd, BackendFlags& flags) {
  cmd->add_option("--device", flags.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--kv-cache-dtype", flags.kv_cache_dtype, "fp8 (E4M3) or bf16")->capture_default_str();
  cmd->add_flag("--enforce-eager", flags.enforce_eager, "CUDA: launch kernels one by one instead of replaying CUDA graphs");
  cmd->add_flag("--quantize-lm-head", flags.quantize_lm_head,
                "quantize a 16-bit lm_head to NVFP4 at load (fewer bytes per decode step, slightly different logits)");
  cmd->add_option("--tensor-parallel-size", flags.tensor_parallel_size,
                  "split the model over this many GPUs (attention heads, MLP columns and each MoE "
                  "expert's columns per GPU, NCCL all-reduce; one thread per GPU). With --device cpu: as many "
                  "CPU ranks, to check what the GPUs would compute")
      ->capture_default_str();
  cmd->add_flag("--enable-expert-parallel", flags.expert_parallel,
                "with --tensor-parallel-size: give each GPU whole MoE experts instead of a slice of every expert");
  cmd->add_flag("--offload-embeddings", flags.offload_embeddings,
                "CUDA: keep the token-embedding table in pinned host memory and read each step's rows over PCIe "
                "(as llama.cpp does), saving its size in GPU memory (1.2 GB for Qwen3-8B, 2.8 GB for Gemma 3 27B). "
                "A tied lm_head is that table, read whole every step: combine with --quantize-lm-head then "
                "(checked on any device; with --device cpu every weight is in host memory already)");
}

}  // namespace fp4llm::cli
