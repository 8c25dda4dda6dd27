#pragma once

#include <string>

namespace fp4llm {

// When `s` ends with `suffix`, sets `stem` to the rest and returns true.
inline bool strip_suffix(const std::string& s, const std::string& suffix, std::string& stem) {
  if (!s.ends_with(suffix)) return false;
  stem = s.substr(0, s.size() - suffix.size());
  return true;
}

}  // namespace fp4llm
