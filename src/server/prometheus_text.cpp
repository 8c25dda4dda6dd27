#include "server/prometheus_text.hpp"

#include <fmt/format.h>

namespace fp4llm::server {

namespace {

class Writer {
 public:
  explicit Writer(const std::string& model) : label_(fmt::format("model_name=\"{}\"", escape(model))) {}

  void gauge(const char* name, const char* help, double value) { scalar(name, help, "gauge", value); }
  void counter(const char* name, const char* help, double value) { scalar(name, help, "counter", value); }

  void counter_by(const char* name, const char* help, const char* key, const std::map<std::string, int64_t>& values) {
    head(name, help, "counter");
    for (const auto& [k, v] : values) out_ += fmt::format("{}{{{},{}=\"{}\"}} {}\n", name, label_, key, escape(k), v);
  }

  void histogram(const char* name, const char* help, const Histogram& h) {
    head(name, help, "histogram");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      const std::string le = i < h.bounds.size() ? fmt::format("{}", h.bounds[i]) : "+Inf";
      out_ += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, label_, le, cumulative);
    }
    out_ += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, label_, h.sum, name, label_, h.count);
  }

  std::string take() { return std::move(out_); }

 private:
  static std::string escape(const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == '\\' || c == '"') o += '\\';
      if (c == '\n') {
        o += "\\n";
        continue;
      }
      o += c;
    }
    return o;
  }
  void head(const char* name, const char* help, const char* type) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void scalar(const char* name, const char* help, const char* type, double value) {
    head(name, help, type);
    out_ += fmt::format("{}{{{}}} {}\n", name, label_, value);
  }
  std::string label_, out_;
};

}  // namespace

std::string prometheus_text(const EngineMetrics& m, const std::string& model_name) {
  Writer w(model_name);
  w.gauge("fp4llm:num_requests_running", "Requests in the running batch.", double(m.running));
  w.gauge("fp4llm:num_requests_waiting", "Requests waiting to be scheduled.", double(m.waiting));
  w.gauge("fp4llm:kv_cache_usage_perc", "Fraction of KV cache blocks in use (1 = full).",
          m.kv_blocks_total ? double(m.kv_blocks_used) / double(m.kv_blocks_total) : 0.0);
  w.gauge("fp4llm:kv_cache_blocks_total", "KV cache blocks.", double(m.kv_blocks_total));
  w.gauge("fp4llm:kv_cache_blocks_used", "KV cache blocks referenced by a request.", double(m.kv_blocks_used));
  w.gauge("fp4llm:kv_cache_blocks_cached", "Full KV blocks kept for prefix caching.", double(m.kv_blocks_cached));
  if (m.kv_window_blocks_total > 0) {
    w.gauge("fp4llm:kv_cache_window_blocks_total", "KV blocks of the sliding-window layers' pool.",
            double(m.kv_window_blocks_total));
    w.gauge("fp4llm:kv_cache_window_blocks_used", "Window-pool blocks referenced by a request.",
            double(m.kv_window_blocks_used));
  }
  w.counter("fp4llm:prompt_tokens_total", "Prompt tokens of started requests.", double(m.prompt_tokens));
  w.counter("fp4llm:generation_tokens_total", "Generated tokens.", double(m.generation_tokens));
  w.counter("fp4llm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
            double(m.prefix_cache_queries));
  w.counter("fp4llm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", double(m.prefix_cache_hits));
  w.counter("fp4llm:num_preemptions_total", "Requests preempted (to be recomputed) for lack of KV blocks.",
            double(m.preemptions));
  w.counter("fp4llm:engine_steps_total", "Forward passes run.", double(m.steps));
  w.counter_by("fp4llm:request_success_total", "Finished requests by finish reason.", "finished_reason", m.finished);
  w.histogram("fp4llm:time_to_first_token_seconds", "Time from arrival to the first generated token.",
              m.time_to_first_token);
  w.histogram("fp4llm:inter_token_latency_seconds", "Time between consecutive generated tokens.",
              m.inter_token_latency);
  w.histogram("fp4llm:e2e_request_latency_seconds", "Time from arrival to finish.", m.e2e_request_latency);
  return w.take();
}

}  // namespace fp4llm::server
