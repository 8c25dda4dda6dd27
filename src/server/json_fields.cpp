#include "server/json_fields.hpp"

#include <fmt/format.h>

#include <cmath>

#include "server/api_error.hpp"

namespace fp4llm::server {

namespace {
const Json* field(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}
}  // namespace

std::optional<bool> opt_bool(const Json& body, const char* key) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad_request(fmt::format("'{}' must be a boolean, got {}", key, v->type_name()), key);
  return v->get<bool>();
}

std::optional<std::string> opt_string(const Json& body, const char* key) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad_request(fmt::format("'{}' must be a string, got {}", key, v->type_name()), key);
  return v->get<std::string>();
}

std::optional<int64_t> opt_integer(const Json& body, const char* key, int64_t min, int64_t max) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number())
    bad_request(fmt::format("'{}' must be an integer, got {}", key, v->type_name()), key);
  const auto out_of_range = [&](const std::string& shown) {
    bad_request(fmt::format("'{}' must be between {} and {}, got {}", key, min, max, shown), key);
  };
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) out_of_range(v->dump());
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d))
      bad_request(fmt::format("'{}' must be an integer, got {}", key, v->dump()), key);
    if (d < double(min) || d > double(max)) out_of_range(v->dump());
    return int64_t(d);
  }
  const int64_t i = v->get<int64_t>();
  if (i < min || i > max) out_of_range(std::to_string(i));
  return i;
}

std::optional<double> opt_number(const Json& body, const char* key, double min, double max) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad_request(fmt::format("'{}' must be a number, got {}", key, v->type_name()), key);
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max)
    bad_request(fmt::format("'{}' must be between {} and {}, got {}", key, min, max, v->dump()), key);
  return d;
}

std::vector<std::string> opt_strings(const Json& body, const char* key, size_t max_items) {
  const Json* v = field(body, key);
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array())
    bad_request(fmt::format("'{}' must be a string or an array of strings, got {}", key, v->type_name()), key);
  if (v->size() > max_items) bad_request(fmt::format("'{}' has {} items; at most {} are allowed", key, v->size(), max_items), key);
  std::vector<std::string> out;
  for (const auto& s : *v) {
    if (!s.is_string()) bad_request(fmt::format("'{}' must be a string or an array of strings", key), key);
    out.push_back(s.get<std::string>());
  }
  return out;
}

}  // namespace fp4llm::server
