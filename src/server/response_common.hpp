// Pieces both OpenAI endpoints use: response ids, the usage object, submitting to the engine
// with its refusals mapped to HTTP statuses, and waiting for every choice to finish.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/llm_engine.hpp"
#include "server/json_fields.hpp"
#include "server/reply.hpp"

namespace fp4llm::server {

std::string make_response_id(const char* prefix);  // prefix + 24 random hex digits
int64_t unix_time_now();

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  Json json() const;
};

// 429 when the engine's queue is full, 400 for what the engine refuses.
std::shared_ptr<RequestStream> submit_to_engine(LlmEngine& engine, std::vector<EngineRequest> requests);

// Blocks until `count` requests have reported their finish, calling `on_output` for each output
// and `alive` about once a second; when it returns false the requests are cancelled and
// ClientGone is thrown.
void wait_for_all(RequestStream& stream, size_t count, const std::function<void(RequestOutput&)>& on_output,
                  const Heartbeat& alive);

// The text of an output that ended in error; empty otherwise.
inline bool is_error(const RequestOutput& o) { return o.finish_reason && *o.finish_reason == "error"; }

}  // namespace fp4llm::server
