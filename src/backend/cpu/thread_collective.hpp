// The two collectives of tensor parallelism (issue 8) between ranks that are threads of one
// process: what NCCL does between GPUs, for the CPU backend's ranks. Sums run in rank order on
// every rank, so all ranks hold bitwise the same result, as after NCCL's all-reduce.
// A rank that fails calls abort(): the others, waiting or arriving later, throw instead of
// waiting for it forever.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "util/error.hpp"

namespace fp4llm::cpu {

// What a rank throws when a peer failed (the peer's own error is the one to report).
struct PeerRankFailed : Error {
  PeerRankFailed() : Error("another tensor-parallel rank failed") {}
};

class ThreadCollective {
 public:
  explicit ThreadCollective(int64_t size);

  int64_t size() const { return size_; }
  // In place, sum over ranks; every rank passes `count` floats.
  void all_reduce_sum(int64_t rank, float* data, size_t count);
  // recv = [rank 0's send | rank 1's send | ...], `count` floats each.
  void all_gather(int64_t rank, const float* send, float* recv, size_t count);
  // Wakes every waiting rank with PeerRankFailed; later calls throw too, until reset().
  void abort();
  // Back to a usable state once every rank has returned from its step.
  void reset();

 private:
  // Returns when all ranks have arrived; throws PeerRankFailed after abort().
  void arrive_and_wait();

  int64_t size_;
  std::vector<const float*> posted_;  // each rank's buffer for the collective in progress
  std::mutex mutex_;
  std::condition_variable arrived_;
  int64_t waiting_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
};

}  // namespace fp4llm::cpu
