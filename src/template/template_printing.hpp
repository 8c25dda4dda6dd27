// How Python turns values into text: str(), repr(), float repr, and json.dumps as the tojson
// filter of transformers calls it.
#pragma once

#include <optional>
#include <string>

#include "template/template_value.hpp"

namespace fp4llm::tmpl {

std::string py_str(const Value& v);   // what {{ v }} prints
std::string py_repr(const Value& v);  // how v prints inside a list or dict
std::string float_repr(double d);
std::string string_repr(const std::string& s);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // None: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};

// json.dumps(v, ...); throws for values JSON cannot hold (undefined, generators, functions).
std::string to_json(const Value& v, const JsonOptions& options);

}  // namespace fp4llm::tmpl
