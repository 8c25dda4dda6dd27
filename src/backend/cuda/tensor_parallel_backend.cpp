#include "backend/cuda/tensor_parallel_backend.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <vector>

#include "util/error.hpp"
#include "util/tcp_rendezvous.hpp"

namespace fp4llm::cuda {

namespace {
constexpr std::chrono::seconds kRendezvousTimeout{60};  // every rank's thread is already running
}  // namespace

// A thread bound to one GPU that runs one job at a time.
struct TensorParallelBackend::Worker {
  explicit Worker(int device) : thread([this, device] { loop(device); }) {}
  ~Worker() {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    wake.notify_all();
    thread.join();
  }

  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mutex);
      job = std::move(f);
      error = nullptr;
      done = false;
    }
    wake.notify_all();
  }
  // Waits for the posted job; returns its exception, if any.
  std::exception_ptr wait() {
    std::unique_lock lock(mutex);
    finished.wait(lock, [&] { return done; });
    return error;
  }

  void loop(int device) {
    const cudaError_t status = cudaSetDevice(device);
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stop || job; });
        if (stop) return;
        f = std::move(job);
        job = nullptr;
      }
      std::exception_ptr e;
      try {
        if (status != cudaSuccess) fail("GPU {}: {}", device, cudaGetErrorString(status));
        f();
      } catch (...) {
        e = std::current_exception();
      }
      {
        std::lock_guard lock(mutex);
        error = e;
        done = true;
      }
      finished.notify_all();
    }
  }

  std::mutex mutex;
  std::condition_variable wake, finished;
  std::function<void()> job;
  std::exception_ptr error;
  bool done = true, stop = false;
  std::thread thread;  // last: starts once the members above exist
};

TensorParallelBackend::TensorParallelBackend(const ModelConfig& config, const TensorParallelPlan& plan,
                                             const std::function<DeviceModel(int64_t)>& make_model,
                                             const KvCacheConfig& cache, bool enforce_eager)
    : config_(config), plan_(plan) {
  const int64_t size = plan.size;
  if (!nccl_available()) fail("--tensor-parallel-size {}: this build has no NCCL", size);
  int devices = 0;
  FP4LLM_CUDA_CHECK(cudaGetDeviceCount(&devices));
  if (devices < size) fail("--tensor-parallel-size {}: only {} GPU(s) visible", size, devices);
  for (int64_t r = 0; r < size; ++r) workers_.push_back(std::make_unique<Worker>(int(r)));
  ranks_.resize(size_t(size));
  comms_.resize(size_t(size));
  // Rank 0 makes the NCCL id and hands it to the other ranks over a local socket: the exchange
  // ranks on other hosts would run against a reachable address (util/tcp_rendezvous.hpp).
  const CommunicatorId id = new_communicator_id();
  RendezvousServer rendezvous;
  try {
    on_all_ranks([&](int64_t r) {
      CommunicatorId joined = id;
      if (r == 0) {
        rendezvous.serve(id, int(size - 1), kRendezvousTimeout);
      } else {
        const std::vector<char> bytes = rendezvous_receive("127.0.0.1", rendezvous.port(), joined.size(), kRendezvousTimeout);
        std::copy(bytes.begin(), bytes.end(), joined.begin());
      }
      comms_[size_t(r)] = join_communicator(joined, int(r), int(size));  // blocks until every rank joined
      ranks_[size_t(r)] = std::make_unique<CudaBackend>(make_model(r), cache, enforce_eager, comms_[size_t(r)]);
    });
  } catch (...) {
    release_ranks();
    throw;
  }
}

TensorParallelBackend::~TensorParallelBackend() {
  try {
    release_ranks();
  } catch (...) {
  }
}

// Each rank's GPU objects are released on its own thread (its device current).
void TensorParallelBackend::release_ranks() {
  on_all_ranks([&](int64_t r) {
    ranks_[size_t(r)].reset();
    leave_communicator(comms_[size_t(r)]);
  });
}

void TensorParallelBackend::on_all_ranks(const std::function<void(int64_t)>& f) {
  for (size_t r = 0; r < workers_.size(); ++r) workers_[r]->post([&f, r] { f(int64_t(r)); });
  std::exception_ptr first;
  for (auto& w : workers_)
    if (std::exception_ptr e = w->wait(); e && !first) first = e;
  if (first) std::rethrow_exception(first);
}

void TensorParallelBackend::forward(const ForwardBatch& batch, std::vector<float>& logits) {
  on_all_ranks([&](int64_t r) {
    if (r == 0) ranks_[0]->forward(batch, logits);
    else ranks_[size_t(r)]->step(batch);
  });
}

std::vector<int32_t> TensorParallelBackend::forward_greedy(const ForwardBatch& batch) {
  std::vector<int32_t> ids;
  on_all_ranks([&](int64_t r) {
    if (r == 0) ids = ranks_[0]->forward_greedy(batch);
    else ranks_[size_t(r)]->step(batch);
  });
  return ids;
}

std::unique_ptr<TensorParallelBackend> make_tensor_parallel_backend(const ModelWeights& weights,
                                                                    const TensorParallelPlan& plan,
                                                                    const KvCacheConfig& cache, bool enforce_eager,
                                                                    bool progress, HostTable host_table) {
  return std::make_unique<TensorParallelBackend>(
      weights.config, plan,
      [&](int64_t r) {
        const auto shard = shard_weights(weights, plan, r);
        return upload_model(shard->weights, progress && r == 0, host_table);
      },
      cache, enforce_eager);
}

}  // namespace fp4llm::cuda
