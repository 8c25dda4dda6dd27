// Owned device memory of a fixed element count; moves, never copies.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

// Bytes held by all DeviceBuffers now and at most (the allocator's high-water mark).
inline std::atomic<size_t> g_device_bytes{0}, g_device_peak_bytes{0};

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count == 0) return;
    FP4LLM_CUDA_CHECK(cudaMalloc(&data_, count * sizeof(T)));
    const size_t now = g_device_bytes += count * sizeof(T);
    size_t peak = g_device_peak_bytes.load();
    while (now > peak && !g_device_peak_bytes.compare_exchange_weak(peak, now)) {
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  // Copies a host vector into a new buffer.
  static DeviceBuffer from_host(const std::vector<T>& host) {
    DeviceBuffer b(host.size());
    if (!host.empty()) FP4LLM_CUDA_CHECK(cudaMemcpy(b.data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return b;
  }
  // A new buffer of `count` zero bytes' elements (counters that kernels leave at zero again).
  static DeviceBuffer zeroed(size_t count) {
    DeviceBuffer b(count);
    if (count > 0) FP4LLM_CUDA_CHECK(cudaMemset(b.data_, 0, b.bytes()));
    // The memset runs on the legacy stream, which kernels on non-blocking streams do not wait
    // for; these buffers are counters those kernels read first.
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    return b;
  }
  std::vector<T> to_host() const {
    std::vector<T> host(count_);
    if (count_ > 0) FP4LLM_CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  // Grows (contents lost) when fewer than `count` elements are held.
  void ensure(size_t count) {
    if (count > count_) *this = DeviceBuffer(count);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  void release() {
    if (data_) {
      cudaFree(data_);
      g_device_bytes -= count_ * sizeof(T);
    }
    data_ = nullptr;
    count_ = 0;
  }
  T* data_ = nullptr;
  size_t count_ = 0;
};

}  // namespace fp4llm::cuda
