#include "engine/request_stream.hpp"

namespace fp4llm {

void RequestStream::push(RequestOutput output) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(std::move(output));
  }
  ready_.notify_all();
}

bool RequestStream::pop(std::vector<RequestOutput>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !pending_.empty(); })) return false;
  while (!pending_.empty()) {
    out.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  return true;
}

}  // namespace fp4llm
