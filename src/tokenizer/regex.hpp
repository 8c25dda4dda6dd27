// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) standing in for the
// Oniguruma regexes of Hugging Face tokenizers. Thread-safe: matching state is per call.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fp4llm::tok {

class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [begin, end) of the successive non-overlapping matches in valid UTF-8 `text`,
  // found left to right as Oniguruma's find_iter does (an empty match moves on one character).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::unique_ptr<Code> code_;
};

// A regex source that matches `literal` exactly.
std::string regex_escape(std::string_view literal);

}  // namespace fp4llm::tok
