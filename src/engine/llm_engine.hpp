// The serving engine: a thread that runs continuous-batching steps over one Backend. HTTP
// threads submit requests and read their outputs through a RequestStream; they never touch the
// scheduler or the backend.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "backend/backend.hpp"
#include "engine/block_manager.hpp"
#include "engine/engine_metrics.hpp"
#include "engine/engine_request.hpp"
#include "engine/request_stream.hpp"
#include "engine/scheduler.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace fp4llm {

struct EngineConfig {
  SchedulerConfig scheduler;
  int64_t max_model_len = 4096;
  int64_t num_blocks = 0;             // KV cache blocks the backend was built with
  int64_t num_window_blocks = 0;      // its window pool's (scheduler.sliding_window: their window)
  int64_t max_queued_requests = 256;  // waiting beyond this: submit throws EngineBusy
};

// Too many requests are waiting; the server answers 429.
struct EngineBusy : Error {
  using Error::Error;
};

class LlmEngine {
 public:
  // `backend` and `tokenizer` must outlive the engine. Starts the engine thread.
  LlmEngine(Backend& backend, const Tokenizer& tokenizer, const EngineConfig& config);
  ~LlmEngine();
  LlmEngine(const LlmEngine&) = delete;
  LlmEngine& operator=(const LlmEngine&) = delete;

  // Queues requests that answer one client (the n choices, or several prompts) and share one
  // stream; each output names its request by `index`, the position in `requests`. All or
  // nothing: throws Error for an invalid request, EngineBusy when the queue is full.
  std::shared_ptr<RequestStream> submit(std::vector<EngineRequest> requests);
  EngineMetrics metrics() const;
  const EngineConfig& config() const { return config_; }

 private:
  void validate(const EngineRequest& r) const;
  void loop();
  void step();
  void run_batch(const std::vector<ScheduledChunk>& chunks);
  GeneratedToken sample(Sequence& s, std::span<float> logits);
  void emit(Sequence& s, GeneratedToken token);
  void record_finish(const Sequence& s, const RequestOutput& out);
  void publish_metrics();

  Backend& backend_;
  const Tokenizer& tokenizer_;
  EngineConfig config_;
  BlockManager blocks_;
  std::optional<BlockManager> window_blocks_;
  Scheduler scheduler_;
  std::vector<float> logits_;
  CandidateRows candidates_;
  EngineMetrics local_;  // engine thread only
  uint64_t seed_base_;

  std::mutex mutex_;  // guards inbox_, stop_
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  bool stop_ = false;
  std::atomic<int64_t> queued_{0};  // inbox + waiting, for back-pressure
  std::atomic<uint64_t> next_id_{0};

  mutable std::mutex metrics_mutex_;
  EngineMetrics published_;
  std::thread thread_;  // last: started after everything it uses
};

}  // namespace fp4llm
