// Parses a request body as JSON: a 400 with the parser's message for malformed input, and a
// nesting limit so that a hostile body cannot make later recursive code (dumps, template
// rendering) overflow the stack.
#pragma once

#include <string_view>

#include "server/json_fields.hpp"

namespace fp4llm::server {

inline constexpr int kMaxJsonDepth = 64;

Json parse_request_body(std::string_view body);

}  // namespace fp4llm::server
