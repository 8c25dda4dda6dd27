// The `pattern` field of Split, Replace normalizers and Replace decoders: {"String": literal}
// or {"Regex": source}. Both find successive non-overlapping matches, left to right.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/regex.hpp"

namespace fp4llm::tok {

class Pattern {
 public:
  Pattern() = default;  // the empty literal, which never matches
  // `owner` names the component for error messages ("pre_tokenizer Split", ...).
  static Pattern from_json(const nlohmann::json& j, std::string_view owner);

  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  // Every match replaced by `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

  bool is_literal() const { return regex_ == nullptr; }
  const std::string& literal() const { return literal_; }

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

}  // namespace fp4llm::tok
