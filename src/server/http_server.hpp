// The HTTP side of `fp4llm serve` (cpp-httplib): routes, API-key check, body size limit,
// OpenAI-style errors for every failure, and server-sent events. Handlers run on the HTTP
// library's thread pool; generation runs on the engine thread.
#pragma once

#include <cstddef>
#include <string>

#include "server/serving_model.hpp"

namespace fp4llm::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (printed)
  std::string api_key;  // empty: no check
  size_t max_body_bytes = size_t{8} << 20;
  int threads = 128;  // each streaming client holds one for its request
};

// Blocks signals SIGINT and SIGTERM in the calling thread and the threads it starts later, so
// that serve_http can wait for them; call before any other thread starts (the engine's, the
// CUDA runtime's), or a signal delivered to one of those takes its default action.
void block_shutdown_signals();

// Serves until SIGINT or SIGTERM. Prints "listening on http://HOST:PORT" to stderr once ready.
void serve_http(ServingModel& model, const HttpOptions& options);

}  // namespace fp4llm::server
