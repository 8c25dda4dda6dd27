// A whole file read as bytes (UTF-8 text, JSON, templates); fails naming the path.
#pragma once

#include <filesystem>
#include <string>

namespace fp4llm {

std::string read_text_file(const std::filesystem::path& path);

}  // namespace fp4llm
