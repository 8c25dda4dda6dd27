// Splits [0, n) into contiguous chunks over the machine's cores.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace fp4llm {

template <typename Fn>  // Fn(int64_t begin, int64_t end)
void parallel_for(int64_t n, int64_t min_chunk, Fn&& fn) {
  const int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t workers = std::clamp<int64_t>(n / std::max<int64_t>(1, min_chunk), 1, hw);
  if (workers == 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> threads;
  const int64_t chunk = (n + workers - 1) / workers;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    threads.emplace_back([&, begin] {
      try {
        fn(begin, std::min(n, begin + chunk));
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace fp4llm
