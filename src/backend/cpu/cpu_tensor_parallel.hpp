// Tensor parallelism on the CPU (issue 8): N CpuBackends, each over its rank's shard of the model
// (model/tensor_parallel.hpp), one thread per rank per step, joined by a ThreadCollective where
// the CUDA backend's ranks are joined by NCCL. Slower than one CpuBackend; it exists so that the
// partition (heads, replicated KV heads, MLP and expert columns, whole experts, vocabulary
// slices) and the places of the sums and the gather are checked against the unsplit model on any
// machine, and `--device cpu --tensor-parallel-size N` runs what N GPUs would compute.
#pragma once

#include <memory>
#include <vector>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/thread_collective.hpp"
#include "model/tensor_parallel.hpp"

namespace fp4llm::cpu {

class CpuTensorParallelBackend final : public Backend {
 public:
  // `weights` must outlive the backend; every rank gets a KV cache of `cache.num_blocks` blocks
  // holding its own KV heads.
  CpuTensorParallelBackend(const ModelWeights& weights, const TensorParallelPlan& plan, const KvCacheConfig& cache);

  const ModelConfig& config() const override { return config_; }
  // Every rank runs the step; rank 0's logits (the same on every rank after the gather) are
  // returned. A rank's error is rethrown once every rank has returned.
  void forward(const ForwardBatch& batch, std::vector<float>& logits) override;
  // CpuBackend::set_bf16_products on every rank.
  void set_bf16_products(bool on) {
    for (auto& r : ranks_) r->set_bf16_products(on);
  }

 private:
  ModelConfig config_;
  ThreadCollective group_;
  std::vector<std::unique_ptr<RankWeights>> shards_;
  std::vector<std::unique_ptr<CpuBackend>> ranks_;
};

}  // namespace fp4llm::cpu
