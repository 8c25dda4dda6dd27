#include "engine/stop_string_matcher.hpp"

#include <algorithm>
#include <utility>

namespace fp4llm {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

// The longest tail of the held text that is a proper prefix of some stop string.
size_t StopStringMatcher::held_back_length() const {
  size_t keep = 0;
  for (const auto& s : stops_)
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n)
      if (std::string_view(held_).substr(held_.size() - n) == std::string_view(s).substr(0, n)) {
        keep = n;
        break;
      }
  return keep;
}

std::string StopStringMatcher::push(std::string_view piece) {
  if (stopped_) return {};
  held_ += piece;
  // Earlier text never held a whole stop string, so only the earliest match in the held text
  // matters; it may begin in text held back from an earlier push.
  size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  const size_t keep = held_back_length();
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopStringMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(held_, std::string());
}

}  // namespace fp4llm
