// The methods of Python's str, dict, list and tuple that templates call (message.content.strip(),
// message.items(), ...), as bound functions.
#pragma once

#include <optional>
#include <string>

#include "template/template_value.hpp"

namespace fp4llm::tmpl {

// The attribute `name` of `self`'s Python type: a bound method, an undefined for methods the
// immutable sandbox forbids (list.append, dict.update, ...), or nullopt if the type has none.
std::optional<Value> builtin_method(const Value& self, const std::string& name);

// Python str methods used by filters as well.
std::string py_strip(const std::string& s, const Value& chars, bool left, bool right);
std::vector<std::string> py_split(const std::string& s, const Value& sep, int64_t maxsplit,
                                  bool from_right);
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl,
                       int64_t count);
std::vector<std::string> py_splitlines(const std::string& s, bool keepends);

}  // namespace fp4llm::tmpl
