// What the serving engine reports on /metrics: queue sizes, KV cache use, token counters,
// prefix-cache hits, preemptions and latency histograms. A plain copyable snapshot; the engine
// thread updates its copy and the HTTP threads read a copy under a lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fp4llm {

// A Prometheus histogram: counts per bucket (upper bounds `bounds`, then +Inf), sum and count.
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // bounds.size() + 1 buckets, not cumulative
  double sum = 0;
  uint64_t count = 0;

  explicit Histogram(std::vector<double> upper_bounds = {});
  void observe(double value);
};

struct EngineMetrics {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_cached = 0;
  int64_t kv_window_blocks_total = 0, kv_window_blocks_used = 0;  // the sliding layers' pool, if any
  int64_t prompt_tokens = 0, generation_tokens = 0;
  int64_t prefix_cache_queries = 0, prefix_cache_hits = 0;  // tokens
  int64_t preemptions = 0, steps = 0;
  std::map<std::string, int64_t> finished;  // by finish reason
  Histogram time_to_first_token, inter_token_latency, e2e_request_latency;  // seconds

  EngineMetrics();
};

}  // namespace fp4llm
