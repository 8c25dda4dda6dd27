// What a handler answers, independent of the HTTP library: a status with a JSON body, or a
// stream of server-sent events produced while the engine generates.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "server/json_fields.hpp"

namespace fp4llm::server {

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Waits up to `timeout` for more output and appends it as SSE text ("data: ...\n\n") to
  // `out`. Returns false once the stream is over (its last event, "data: [DONE]", appended).
  virtual bool next(std::string& out, std::chrono::milliseconds timeout) = 0;
  // The client went away: the engine stops the requests at its next step.
  virtual void cancel() = 0;
};

// A non-streamed answer still being generated. `alive` is called about once a second while it
// waits; it writes a space (leading whitespace is valid JSON) and returns false once the client
// has gone, which cancels the requests: a client that hangs up frees its KV blocks, streamed or not.
using Heartbeat = std::function<bool()>;
using DeferredJson = std::function<Json(const Heartbeat& alive)>;

// Thrown out of a deferred answer whose client went away.
struct ClientGone {};

struct Reply {
  int status = 200;
  Json body;
  std::shared_ptr<EventSource> events;  // set: stream these instead of `body`
  DeferredJson deferred;                // set: the body, once generated (status 200)
};

// "data: <json>\n\n"
std::string sse_event(const Json& data);

}  // namespace fp4llm::server
