#include "backend/cpu/cpu_tensor_parallel.hpp"

#include <exception>
#include <thread>

namespace fp4llm::cpu {

CpuTensorParallelBackend::CpuTensorParallelBackend(const ModelWeights& weights, const TensorParallelPlan& plan,
                                                   const KvCacheConfig& cache)
    : config_(weights.config), group_(plan.size) {
  for (int64_t r = 0; r < plan.size; ++r) {
    shards_.push_back(shard_weights(weights, plan, r));
    ranks_.push_back(std::make_unique<CpuBackend>(shards_.back()->weights, cache, RankLink{&group_, r}));
  }
}

void CpuTensorParallelBackend::forward(const ForwardBatch& batch, std::vector<float>& logits) {
  const size_t n = ranks_.size();
  std::vector<std::vector<float>> out(n);
  std::vector<std::exception_ptr> errors(n);
  const auto run_rank = [&](size_t r) {
    try {
      ranks_[r]->forward(batch, out[r]);
    } catch (const PeerRankFailed&) {
      // reported by the failing rank
    } catch (...) {
      errors[r] = std::current_exception();
      group_.abort();  // the other ranks would wait for this one's sums forever
    }
  };
  std::vector<std::thread> threads;
  for (size_t r = 1; r < n; ++r) threads.emplace_back(run_rank, r);
  run_rank(0);
  for (auto& t : threads) t.join();
  group_.reset();
  for (size_t r = 0; r < n; ++r)
    if (errors[r]) std::rethrow_exception(errors[r]);
  logits = std::move(out[0]);
}

}  // namespace fp4llm::cpu
