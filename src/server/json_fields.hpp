// Typed access to the optional fields of a request body. A field that is absent or null reads
// as nothing; one of the wrong type or out of range is a 400 naming the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace fp4llm::server {

using Json = nlohmann::ordered_json;

std::optional<bool> opt_bool(const Json& body, const char* key);
std::optional<std::string> opt_string(const Json& body, const char* key);
// Accepts integers, and floats with an integral value (10.0), within [min, max].
std::optional<int64_t> opt_integer(const Json& body, const char* key, int64_t min, int64_t max);
std::optional<double> opt_number(const Json& body, const char* key, double min, double max);
// A string or an array of strings (OpenAI's `stop`).
std::vector<std::string> opt_strings(const Json& body, const char* key, size_t max_items);

}  // namespace fp4llm::server
