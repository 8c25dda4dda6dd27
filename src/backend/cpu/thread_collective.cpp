#include "backend/cpu/thread_collective.hpp"

#include <algorithm>

namespace fp4llm::cpu {

ThreadCollective::ThreadCollective(int64_t size) : size_(size) {
  if (size < 1) fail("a group of threads needs at least one rank, got {}", size);
  posted_.resize(size_t(size));
}

void ThreadCollective::arrive_and_wait() {
  std::unique_lock lock(mutex_);
  if (aborted_) throw PeerRankFailed();
  const uint64_t generation = generation_;
  if (++waiting_ == size_) {
    waiting_ = 0;
    ++generation_;
    arrived_.notify_all();
    return;
  }
  arrived_.wait(lock, [&] { return generation_ != generation || aborted_; });
  if (generation_ == generation) throw PeerRankFailed();
}

// Three barriers: buffers posted; every rank has read the others' inputs into its own sum;
// every rank has written its result (so no rank's buffer changes while another still reads it).
void ThreadCollective::all_reduce_sum(int64_t rank, float* data, size_t count) {
  if (size_ == 1) return;
  posted_[size_t(rank)] = data;
  arrive_and_wait();
  std::vector<float> sum(posted_[0], posted_[0] + count);
  for (int64_t r = 1; r < size_; ++r)
    for (size_t i = 0; i < count; ++i) sum[i] += posted_[size_t(r)][i];
  arrive_and_wait();
  std::copy(sum.begin(), sum.end(), data);
  arrive_and_wait();
}

void ThreadCollective::all_gather(int64_t rank, const float* send, float* recv, size_t count) {
  posted_[size_t(rank)] = send;
  arrive_and_wait();
  for (int64_t r = 0; r < size_; ++r) std::copy_n(posted_[size_t(r)], count, recv + size_t(r) * count);
  arrive_and_wait();
}

void ThreadCollective::abort() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  arrived_.notify_all();
}

void ThreadCollective::reset() {
  std::lock_guard lock(mutex_);
  aborted_ = false;
  waiting_ = 0;
}

}  // namespace fp4llm::cpu
