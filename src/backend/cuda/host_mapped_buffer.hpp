// Owned pinned host memory that kernels read directly over PCIe (mapped, portable to every GPU
// of the process): for data of which a step reads a few rows, such as the embedding table, so
// it need not take GPU memory. Moves, never copies.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstring>
#include <utility>

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

template <typename T>
class HostMappedBuffer {
 public:
  HostMappedBuffer() = default;
  explicit HostMappedBuffer(size_t count) : count_(count) {
    if (count == 0) return;
    FP4LLM_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&host_), count * sizeof(T),
                                    cudaHostAllocMapped | cudaHostAllocPortable));
    FP4LLM_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_), host_, 0));
  }
  HostMappedBuffer(const HostMappedBuffer&) = delete;
  HostMappedBuffer& operator=(const HostMappedBuffer&) = delete;
  HostMappedBuffer(HostMappedBuffer&& o) noexcept
      : host_(std::exchange(o.host_, nullptr)), device_(std::exchange(o.device_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  HostMappedBuffer& operator=(HostMappedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      host_ = std::exchange(o.host_, nullptr);
      device_ = std::exchange(o.device_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  ~HostMappedBuffer() { release(); }

  T* host() { return host_; }
  const T* device() const { return device_; }  // the address kernels read
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  void release() {
    if (host_) cudaFreeHost(host_);
    host_ = device_ = nullptr;
    count_ = 0;
  }
  T* host_ = nullptr;
  T* device_ = nullptr;
  size_t count_ = 0;
};

}  // namespace fp4llm::cuda
