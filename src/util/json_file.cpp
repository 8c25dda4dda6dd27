#include "util/json_file.hpp"

#include <fstream>

#include "util/error.hpp"

namespace fp4llm {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) fail("cannot open {}", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

void write_json_file(const std::filesystem::path& path, const nlohmann::json& value) {
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  {
    std::ofstream out(tmp);
    out << value.dump(2) << "\n";
    if (!out) fail("cannot write {}", tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace fp4llm
