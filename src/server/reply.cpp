#include "server/reply.hpp"

namespace fp4llm::server {

std::string sse_event(const Json& data) {
  return "data: " + data.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

}  // namespace fp4llm::server
