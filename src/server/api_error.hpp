// An error answered to an API client: HTTP status plus OpenAI's error body
// {"error": {"message", "type", "param", "code"}}. Thrown anywhere while handling a request and
// turned into the response by the HTTP layer.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace fp4llm::server {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string code = {});
  int status;
  std::string param, code;
  nlohmann::ordered_json body() const;
};

// 400 with OpenAI's type "invalid_request_error" and the offending field as `param`.
[[noreturn]] void bad_request(std::string message, std::string param = {});

// OpenAI's error type for a status: invalid_request_error, authentication_error, ...
const char* error_type(int status);

nlohmann::ordered_json error_body(int status, const std::string& message, const std::string& param = {},
                                  const std::string& code = {});

}  // namespace fp4llm::server
