#include "server/request_body.hpp"

#include <fmt/format.h>

#include "server/api_error.hpp"

namespace fp4llm::server {

Json parse_request_body(std::string_view body) {
  if (body.empty()) bad_request("the request body is empty; send a JSON object");
  bool too_deep = false;
  const Json::parser_callback_t limit_depth = [&](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth) too_deep = true;
    return !too_deep;
  };
  Json j;
  try {
    j = Json::parse(body, limit_depth);
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    bad_request(fmt::format("the request body is not valid JSON: {}", e.what()));
  }
  if (too_deep) bad_request(fmt::format("the request body nests deeper than {} levels", kMaxJsonDepth));
  if (!j.is_object()) bad_request("the request body must be a JSON object");
  return j;
}

}  // namespace fp4llm::server
