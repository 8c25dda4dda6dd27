// Tensor parallelism over N GPUs of one host (issue 8): one thread per GPU, each owning a
// CudaBackend over its rank's shard of the model (model/tensor_parallel.hpp), joined by an NCCL
// communicator. Threads rather than processes: the checkpoint is mapped and sharded once, and
// the engine, scheduler and HTTP server stay one process that calls forward() as for one GPU;
// the ranks rendezvous through ncclGetUniqueId/ncclCommInitRank as separate processes or hosts
// would. Every rank runs every step (the batch is shared memory, nothing to broadcast); rank 0
// returns the logits.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_backend.hpp"
#include "model/tensor_parallel.hpp"

namespace fp4llm::cuda {

class TensorParallelBackend final : public Backend {
 public:
  // `make_model(rank)` runs on the rank's thread with its GPU current and builds its DeviceModel.
  // Throws Error when fewer GPUs are visible than the plan's size, or NCCL is missing.
  TensorParallelBackend(const ModelConfig& config, const TensorParallelPlan& plan,
                        const std::function<DeviceModel(int64_t)>& make_model, const KvCacheConfig& cache,
                        bool enforce_eager);
  ~TensorParallelBackend() override;

  const ModelConfig& config() const override { return config_; }
  void forward(const ForwardBatch& batch, std::vector<float>& logits) override;
  std::vector<int32_t> forward_greedy(const ForwardBatch& batch) override;

  int64_t size() const { return plan_.size; }
  CudaBackend& rank(int64_t r) { return *ranks_[size_t(r)]; }
  // Runs f(rank) on every rank's thread at once and waits; rethrows the first rank's error.
  void on_all_ranks(const std::function<void(int64_t)>& f);

 private:
  struct Worker;
  void release_ranks();
  ModelConfig config_;
  TensorParallelPlan plan_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<CudaBackend>> ranks_;
  std::vector<Communicator> comms_;
};

// Loaded weights, sharded per rank (`weights` must outlive the backend); `host_table`
// (host_embedding_table, --offload-embeddings): the embedding table every rank reads.
std::unique_ptr<TensorParallelBackend> make_tensor_parallel_backend(const ModelWeights& weights,
                                                                    const TensorParallelPlan& plan,
                                                                    const KvCacheConfig& cache, bool enforce_eager,
                                                                    bool progress, HostTable host_table = nullptr);

}  // namespace fp4llm::cuda
