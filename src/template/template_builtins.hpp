// jinja2's built-in filters (plus transformers' tojson) and tests, by name.
#pragma once

#include <string>

#include "template/template_value.hpp"

namespace fp4llm::tmpl {

Value apply_filter(const std::string& name, const Value& input, const CallArgs& args);
bool apply_test(const std::string& name, const Value& input, const CallArgs& args);
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

}  // namespace fp4llm::tmpl
