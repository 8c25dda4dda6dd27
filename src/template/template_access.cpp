// obj.name and obj[key] with the rules of jinja2's sandbox: Python attributes first for `.`,
// items first for `[]`, each falling back to the other, undefined when both miss.
#include <fmt/format.h>

#include "template/template_methods.hpp"
#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "template/template_unicode.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

// int.real, float.imag, ...: the data attributes of Python numbers.
std::optional<Value> number_attribute(const Value& obj, const std::string& name) {
  const bool is_int = !obj.is_float();
  if (name == "real") return is_int ? Value::integer(obj.as_int()) : obj;
  if (name == "imag") return is_int ? Value::integer(0) : Value::floating(0.0);
  if (is_int && name == "numerator") return Value::integer(obj.as_int());
  if (is_int && name == "denominator") return Value::integer(1);
  return std::nullopt;
}

// Python attributes of the type itself (methods, namespace and loop attributes).
std::optional<Value> python_attribute(const Value& obj, const std::string& name) {
  if (obj.is_object()) {
    if (!name.empty() && name[0] == '_') return Value::undefined("unsafe attribute " + name);
    return obj.object().get_attr(name);
  }
  if (name.size() > 1 && name[0] == '_' && name[1] == '_')
    return Value::undefined("access to attribute '" + name + "' is unsafe");
  if (obj.is_number()) return number_attribute(obj, name);
  return builtin_method(obj, name);
}

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("'{}' object has no attribute '{}'", type_name(obj), name));
}

std::optional<Value> index_sequence(const Value& obj, int64_t index) {
  if (obj.is_string()) {
    const std::string& s = obj.str();
    if (is_ascii(s)) {
      const int64_t n = static_cast<int64_t>(s.size());
      if (index < 0) index += n;
      if (index < 0 || index >= n) return std::nullopt;
      return Value::string(std::string(1, s[size_t(index)]));
    }
    const auto cps = code_points(s);
    const int64_t n = static_cast<int64_t>(cps.size());
    if (index < 0) index += n;
    if (index < 0 || index >= n) return std::nullopt;
    return Value::string(from_code_points(cps, size_t(index), size_t(index) + 1));
  }
  const auto& items = obj.list().items;
  const int64_t n = static_cast<int64_t>(items.size());
  if (index < 0) index += n;
  if (index < 0 || index >= n) return std::nullopt;
  return items[size_t(index)];
}

bool subscriptable_sequence(const Value& obj) {
  return obj.is_string() || obj.is_seq(Seq::list) || obj.is_seq(Seq::tuple) || obj.is_seq(Seq::range);
}

}  // namespace

std::optional<Value> python_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  return python_attribute(obj, name);
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  if (std::optional<Value> attr = python_attribute(obj, name)) return *attr;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().find(name)) return *v;
  }
  return missing_attribute(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_dict()) {
    if ((key.is_list() && !key.is_seq(Seq::tuple)) || key.is_dict())
      fail("unhashable type: '{}'", type_name(key));
    if (const Value* v = obj.dict().find(key)) return *v;
  } else if (subscriptable_sequence(obj) && (key.is_int() || key.is_bool())) {
    if (auto v = index_sequence(obj, key.as_int())) return *v;
    return Value::undefined(fmt::format("{} object has no element {}", type_name(obj), key.as_int()));
  }
  if (key.is_string()) {
    if (std::optional<Value> attr = python_attribute(obj, key.str())) return *attr;
  }
  return Value::undefined(fmt::format("'{}' object has no item {}", type_name(obj), py_repr(key)));
}

}  // namespace fp4llm::tmpl
