// Finds stop strings in streamed text. Text that could still turn out to be the start of a stop
// string is held back, so a client never receives part of a stop string (as with vLLM).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fp4llm {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Adds generated text and returns what is safe to emit. When a stop string appears, the
  // returned text ends just before it and stopped() becomes true.
  std::string push(std::string_view piece);
  // The end of the text (no stop string came): everything still held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  size_t held_back_length() const;
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace fp4llm
