#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace fp4llm {

// Parses a JSON file; throws Error naming the file when it is missing or malformed.
nlohmann::json read_json_file(const std::filesystem::path& path);
// Writes `value` indented, through a temporary file so a crash never leaves half a file.
void write_json_file(const std::filesystem::path& path, const nlohmann::json& value);

}  // namespace fp4llm
