// The `is` tests of jinja2 (defined, none, string, mapping, iterable, ...).
#include <algorithm>
#include <functional>
#include <unordered_map>

#include "template/template_args.hpp"
#include "template/template_builtins.hpp"
#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "template/template_unicode.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

using TestFn = std::function<bool(const Value&, const CallArgs&)>;

const Value& one_arg(const char* name, const CallArgs& args) {
  static const Value kMissing;
  ArgBinder a(name, args, {"other"});
  return a.has(0) ? a.get(0) : (fail("test '{}' needs an argument", name), kMissing);
}

bool is_iterable(const Value& v) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}

bool is_sequence(const Value& v) {
  return v.is_undefined() || v.is_string() || v.is_dict() || v.is_seq(Seq::list) ||
         v.is_seq(Seq::tuple) || v.is_seq(Seq::range);
}

bool is_callable(const Value& v) { return v.is_object() && v.object().is_callable(); }

// CPython caches small ints, so `x is 3` holds for them; other values compare by identity.
bool same_as(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::none: return true;
    case Kind::boolean: return a.as_bool() == b.as_bool();
    case Kind::integer: return a.as_int() == b.as_int() && a.as_int() >= -5 && a.as_int() <= 256;
    case Kind::list: return &a.list() == &b.list();
    case Kind::dict: return &a.dict() == &b.dict();
    case Kind::object: return a.object_ptr() == b.object_ptr();
    default: return false;
  }
}

bool compare(const char* op, const Value& a, const Value& b) {
  const std::string o = op;
  if (o == "eq") return py_equal(a, b);
  if (o == "ne") return !py_equal(a, b);
  if (o == "lt") return py_less(a, b);
  if (o == "gt") return py_less(b, a);
  if (o == "le") return py_less(a, b) || py_equal(a, b);
  return py_less(b, a) || py_equal(a, b);
}

bool mod_equals(const Value& v, const Value& divisor, int64_t expected) {
  return py_equal(binary_op(BinaryOp::mod, v, divisor), Value::integer(expected));
}

TestFn no_args(std::function<bool(const Value&)> f, const char* name) {
  return [f, name](const Value& v, const CallArgs& args) {
    ArgBinder(name, args, {});
    return f(v);
  };
}

TestFn comparison(const char* op) {
  return [op](const Value& v, const CallArgs& args) { return compare(op, v, one_arg(op, args)); };
}

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = [] {
    std::unordered_map<std::string, TestFn> t;
    t["defined"] = no_args([](const Value& v) { return !v.is_undefined(); }, "defined");
    t["undefined"] = no_args([](const Value& v) { return v.is_undefined(); }, "undefined");
    t["none"] = no_args([](const Value& v) { return v.is_none(); }, "none");
    t["boolean"] = no_args([](const Value& v) { return v.is_bool(); }, "boolean");
    t["true"] = no_args([](const Value& v) { return v.is_bool() && v.as_bool(); }, "true");
    t["false"] = no_args([](const Value& v) { return v.is_bool() && !v.as_bool(); }, "false");
    t["integer"] = no_args([](const Value& v) { return v.is_int(); }, "integer");
    t["float"] = no_args([](const Value& v) { return v.is_float(); }, "float");
    t["number"] = no_args([](const Value& v) { return v.is_number(); }, "number");
    t["string"] = no_args([](const Value& v) { return v.is_string(); }, "string");
    t["mapping"] = no_args([](const Value& v) { return v.is_dict(); }, "mapping");
    t["iterable"] = no_args(is_iterable, "iterable");
    t["sequence"] = no_args(is_sequence, "sequence");
    t["callable"] = no_args(is_callable, "callable");
    t["escaped"] = no_args([](const Value& v) { return v.is_markup(); }, "escaped");
    t["lower"] = no_args([](const Value& v) {
      const std::string s = py_str(v);
      return s == py_lower(s) && s != py_upper(s);
    }, "lower");
    t["upper"] = no_args([](const Value& v) {
      const std::string s = py_str(v);
      return s == py_upper(s) && s != py_lower(s);
    }, "upper");
    t["odd"] = no_args([](const Value& v) { return mod_equals(v, Value::integer(2), 1); }, "odd");
    t["even"] = no_args([](const Value& v) { return mod_equals(v, Value::integer(2), 0); }, "even");
    t["divisibleby"] = [](const Value& v, const CallArgs& args) {
      return mod_equals(v, one_arg("divisibleby", args), 0);
    };
    t["sameas"] = [](const Value& v, const CallArgs& args) { return same_as(v, one_arg("sameas", args)); };
    t["in"] = [](const Value& v, const CallArgs& args) { return contains(one_arg("in", args), v); };
    t["filter"] = [](const Value& v, const CallArgs&) { return v.is_string() && has_filter(v.str()); };
    t["test"] = [](const Value& v, const CallArgs&) { return v.is_string() && has_test(v.str()); };
    for (const char* op : {"eq", "ne", "lt", "gt", "le", "ge"}) t[op] = comparison(op);
    const std::pair<const char*, const char*> aliases[] = {
        {"==", "eq"}, {"equalto", "eq"}, {"!=", "ne"}, {"<", "lt"}, {"lessthan", "lt"},
        {">", "gt"}, {"greaterthan", "gt"}, {"<=", "le"}, {">=", "ge"}};
    for (const auto& [alias, target] : aliases) t[alias] = t[target];
    return t;
  }();
  return table;
}

}  // namespace

bool has_test(const std::string& name) { return tests().count(name) != 0; }

bool apply_test(const std::string& name, const Value& input, const CallArgs& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) fail("no test named '{}'", name);
  return it->second(input, args);
}

}  // namespace fp4llm::tmpl
