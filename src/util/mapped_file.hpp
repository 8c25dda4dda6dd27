// Read-only memory mapping of a whole file.
#pragma once

#include <filesystem>

#include "util/bytes.hpp"

namespace fp4llm {

// Maps `path` read-only; the mapping lives as long as any Bytes slice of it. Throws Error naming
// the file when it cannot be opened or mapped.
Bytes map_file(const std::filesystem::path& path);

}  // namespace fp4llm
