// Binds call arguments to named parameters the way Python does for builtins and filters.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "template/template_value.hpp"

namespace fp4llm::tmpl {

class ArgBinder {
 public:
  // `first` positional arguments are already taken by the caller (e.g. a filter's input).
  ArgBinder(std::string_view function, const CallArgs& args,
            std::initializer_list<std::string_view> names);
  bool has(size_t i) const { return bound_[i] != nullptr; }
  const Value& get(size_t i) const;  // throws when missing
  Value get_or(size_t i, Value fallback) const { return has(i) ? *bound_[i] : fallback; }
  int64_t get_int(size_t i, int64_t fallback) const;
  bool get_bool(size_t i, bool fallback) const;
  std::string get_str(size_t i, std::string fallback) const;

 private:
  std::string function_;
  std::vector<std::string_view> names_;
  std::vector<const Value*> bound_;
};

}  // namespace fp4llm::tmpl
