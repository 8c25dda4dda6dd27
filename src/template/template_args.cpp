#include "template/template_args.hpp"

#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

ArgBinder::ArgBinder(std::string_view function, const CallArgs& args,
                     std::initializer_list<std::string_view> names)
    : function_(function), names_(names), bound_(names.size(), nullptr) {
  if (args.positional.size() > names_.size())
    fail("{}() takes at most {} arguments ({} given)", function_, names_.size(),
         args.positional.size());
  for (size_t i = 0; i < args.positional.size(); ++i) bound_[i] = &args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    while (i < names_.size() && names_[i] != key) ++i;
    if (i == names_.size()) fail("{}() got an unexpected keyword argument '{}'", function_, key);
    if (bound_[i]) fail("{}() got multiple values for argument '{}'", function_, key);
    bound_[i] = &value;
  }
}

const Value& ArgBinder::get(size_t i) const {
  if (!bound_[i]) fail("{}() missing required argument '{}'", function_, names_[i]);
  return *bound_[i];
}

int64_t ArgBinder::get_int(size_t i, int64_t fallback) const {
  if (!has(i) || bound_[i]->is_none()) return fallback;
  if (bound_[i]->is_undefined()) undefined_error(*bound_[i]);
  if (!bound_[i]->is_int() && !bound_[i]->is_bool())
    fail("{}(): '{}' must be an integer, not {}", function_, names_[i], type_name(*bound_[i]));
  return bound_[i]->as_int();
}

bool ArgBinder::get_bool(size_t i, bool fallback) const {
  return has(i) ? truthy(*bound_[i]) : fallback;
}

std::string ArgBinder::get_str(size_t i, std::string fallback) const {
  return has(i) ? py_str(*bound_[i]) : fallback;
}

}  // namespace fp4llm::tmpl
