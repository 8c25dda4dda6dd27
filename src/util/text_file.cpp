#include "util/text_file.hpp"

#include <fstream>
#include <sstream>

#include "util/error.hpp"

namespace fp4llm {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace fp4llm
