// The global functions a chat template can call: jinja2's range/dict/namespace and the
// raise_exception/strftime_now that transformers adds.
#include <cmath>
#include <ctime>

#include "template/template_args.hpp"
#include "template/template_evaluator.hpp"
#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

// jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

int64_t int_arg(const Value& v) {
  if (!v.is_int() && !v.is_bool())
    fail("'{}' object cannot be interpreted as an integer", type_name(v));
  return v.as_int();
}

Value range_fn(const CallArgs& args) {
  if (!args.keyword.empty()) fail("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) fail("range expected 1 to 3 arguments, got {}", p.size());
  const int64_t start = p.size() == 1 ? 0 : int_arg(p[0]);
  const int64_t stop = p.size() == 1 ? int_arg(p[0]) : int_arg(p[1]);
  const int64_t step = p.size() == 3 ? int_arg(p[2]) : 1;
  if (step == 0) fail("range() arg 3 must not be zero");
  const double count = step > 0 ? std::ceil((double(stop) - double(start)) / double(step))
                                 : std::ceil((double(start) - double(stop)) / double(-step));
  if (count > double(kMaxRange))
    fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange);
  auto list = std::make_shared<List>();
  list->seq = Seq::range;
  list->range_start = start;
  list->range_stop = stop;
  list->range_step = step;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) list->items.push_back(Value::integer(i));
  return Value::list(std::move(list));
}

// dict(mapping_or_pairs, **kwargs), shared by dict() and namespace().
std::shared_ptr<Dict> build_dict(const CallArgs& args, const char* fn) {
  if (args.positional.size() > 1) fail("{} expected at most 1 argument, got {}", fn, args.positional.size());
  auto dict = std::make_shared<Dict>();
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict()) {
      *dict = src.dict();
    } else {
      for (const Value& pair : iterate(src)) {
        const std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) fail("{} update sequence element has length {}; 2 is required", fn, kv.size());
        dict->set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) dict->set(Value::string(k), v);
  return dict;
}

Value namespace_fn(const CallArgs& args) {
  auto ns = std::make_shared<Namespace>();
  const std::shared_ptr<Dict> attrs = build_dict(args, "namespace");
  for (const auto& [k, v] : attrs->entries) {
    if (!k.is_string()) fail("namespace keys must be strings");
    ns->set_attr(k.str(), v);
  }
  return Value::object(std::move(ns));
}

Value raise_exception_fn(const CallArgs& args) {
  ArgBinder a("raise_exception", args, {"message"});
  fail("{}", py_str(a.get(0)));
}

Value strftime_now_fn(const CallArgs& args) {
  ArgBinder a("strftime_now", args, {"format"});
  const std::string format = py_str(a.get(0));
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof buf, format.c_str(), &local);
  if (n == 0 && !format.empty()) fail("strftime_now: format produces no or too long output");
  return Value::string(std::string(buf, n));
}

Value unsupported(const std::string& name) {
  return make_function(name, [name](const CallArgs&) -> Value {
    fail("the global function '{}' is not supported by this template engine", name);
  });
}

}  // namespace

void add_globals(Scope& scope) {
  scope.set("range", make_function("range", range_fn));
  scope.set("dict", make_function("dict", [](const CallArgs& a) { return Value::dict(build_dict(a, "dict")); }));
  scope.set("namespace", make_function("namespace", namespace_fn));
  scope.set("raise_exception", make_function("raise_exception", raise_exception_fn));
  scope.set("strftime_now", make_function("strftime_now", strftime_now_fn));
  for (const char* name : {"lipsum", "cycler", "joiner"}) scope.set(name, unsupported(name));
}

}  // namespace fp4llm::tmpl
