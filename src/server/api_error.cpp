#include "server/api_error.hpp"

namespace fp4llm::server {

ApiError::ApiError(int status_, std::string message, std::string param_, std::string code_)
    : std::runtime_error(std::move(message)), status(status_), param(std::move(param_)), code(std::move(code_)) {}

nlohmann::ordered_json ApiError::body() const { return error_body(status, what(), param, code); }

void bad_request(std::string message, std::string param) { throw ApiError(400, std::move(message), std::move(param)); }

const char* error_type(int status) {
  switch (status) {
    case 400: case 404: case 405: case 413: return "invalid_request_error";
    case 401: return "authentication_error";
    case 429: return "rate_limit_exceeded";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

nlohmann::ordered_json error_body(int status, const std::string& message, const std::string& param,
                                  const std::string& code) {
  nlohmann::ordered_json e;
  e["message"] = message;
  e["type"] = error_type(status);
  e["param"] = param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(param);
  e["code"] = code.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(code);
  return {{"error", e}};
}

}  // namespace fp4llm::server
