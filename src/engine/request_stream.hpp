// The channel between the engine thread and the HTTP thread serving one request: the engine
// pushes outputs, the client pops them (blocking with a timeout), and the client may cancel.
// Cancelling only sets a flag; the engine frees the sequence's blocks at its next step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "engine/engine_request.hpp"

namespace fp4llm {

class RequestStream {
 public:
  // Engine side.
  void push(RequestOutput output);
  // Client side: waits up to `timeout` for outputs and moves all pending ones into `out`.
  // Returns false on timeout. After the output with a finish_reason nothing more arrives.
  bool pop(std::vector<RequestOutput>& out, std::chrono::milliseconds timeout);
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<RequestOutput> pending_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace fp4llm
