#include "server/response_common.hpp"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "server/api_error.hpp"

namespace fp4llm::server {

std::string make_response_id(const char* prefix) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), uint32_t(rng()));
}

int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Json Usage::json() const {
  return Json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens},
              {"prompt_tokens_details", Json{{"cached_tokens", cached_tokens}}}};
}

std::shared_ptr<RequestStream> submit_to_engine(LlmEngine& engine, std::vector<EngineRequest> requests) {
  try {
    return engine.submit(std::move(requests));
  } catch (const EngineBusy& e) {
    throw ApiError(429, e.what(), {}, "too_many_requests");
  } catch (const Error& e) {
    bad_request(e.what());
  }
}

void wait_for_all(RequestStream& stream, size_t count, const std::function<void(RequestOutput&)>& on_output,
                  const Heartbeat& alive) {
  constexpr auto kBeat = std::chrono::milliseconds(1000);
  size_t finished = 0;
  std::vector<RequestOutput> outputs;
  auto last_beat = std::chrono::steady_clock::now();
  while (finished < count) {
    outputs.clear();
    stream.pop(outputs, kBeat);
    for (auto& o : outputs) {
      on_output(o);
      if (o.finish_reason) ++finished;
    }
    // Checked on time, not only when idle: a request that keeps generating must notice too.
    if (finished < count && alive && std::chrono::steady_clock::now() - last_beat >= kBeat) {
      last_beat = std::chrono::steady_clock::now();
      if (!alive()) {
        stream.cancel();
        throw ClientGone{};
      }
    }
  }
}

}  // namespace fp4llm::server
