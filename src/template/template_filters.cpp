// jinja2's built-in filters, with transformers' tojson (json.dumps, no HTML escaping).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "template/template_args.hpp"
#include "template/template_builtins.hpp"
#include "template/template_methods.hpp"
#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "template/template_unicode.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

using FilterFn = std::function<Value(const Value&, const CallArgs&)>;

Value str_value(std::string s) { return Value::string(std::move(s)); }

Value generator(std::vector<Value> items) { return Value::list(std::move(items), Seq::generator); }

// jinja2's make_attrgetter: "a.b.0" looks up item a, then b, then index 0.
std::vector<Value> attribute_parts(const Value& attribute) {
  if (attribute.is_none()) return {};
  if (!attribute.is_string()) return {attribute};
  std::vector<Value> parts;
  for (const std::string& part : py_split(attribute.str(), Value::string("."), -1, false)) {
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    parts.push_back(digits && part.size() < 18 ? Value::integer(std::stoll(part)) : Value::string(part));
  }
  return parts;
}

Value get_attribute(Value item, const std::vector<Value>& parts, const Value& fallback = Value::none()) {
  for (const Value& part : parts) {
    item = get_item(item, part);
    if (!fallback.is_none() && item.is_undefined()) item = fallback;
  }
  return item;
}

// sorted(..., reverse=x) accepts only ints and bools.
bool reverse_flag(const ArgBinder& a, size_t i) {
  const Value v = a.get_or(i, Value::boolean(false));
  if (!v.is_bool() && !v.is_int()) fail("'{}' object cannot be interpreted as an integer", type_name(v));
  return v.as_int() != 0;
}

Value ignore_case(const Value& v) { return v.is_string() ? Value::string(py_lower(v.str())) : v; }

Value sort_key(const Value& item, const std::vector<Value>& parts, bool case_sensitive) {
  const Value key = get_attribute(item, parts);
  return case_sensitive ? key : ignore_case(key);
}

// Python's float(str): surrounding whitespace, sign, underscores between digits, inf and nan.
std::optional<double> parse_py_float(const std::string& text) {
  std::string s = py_strip(text, Value::none(), true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 == s.size() || !::isdigit(s[i - 1]) || !::isdigit(s[i + 1])) return std::nullopt;
      continue;
    }
    clean += s[i];
  }
  if (clean.empty()) return std::nullopt;
  std::string body = clean;
  const bool negative = body[0] == '-';
  if (body[0] == '-' || body[0] == '+') body.erase(0, 1);
  const std::string lower = py_lower(body);
  if (lower == "inf" || lower == "infinity") return negative ? -INFINITY : INFINITY;
  if (lower == "nan") return NAN;
  if (body.empty() || !(::isdigit(body[0]) || body[0] == '.')) return std::nullopt;
  if (body.find_first_not_of("0123456789.eE+-") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return v;
}

// Python's int(str, base) for the bases templates use.
std::optional<int64_t> parse_py_int(const std::string& text, int64_t base) {
  std::string s = py_strip(text, Value::none(), true, true);
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  if (base == 16 && s.size() > 2 && s[0] == '0' && (s[1] | 0x20) == 'x') s.erase(0, 2);
  if (base == 8 && s.size() > 2 && s[0] == '0' && (s[1] | 0x20) == 'o') s.erase(0, 2);
  if (base == 2 && s.size() > 2 && s[0] == '0' && (s[1] | 0x20) == 'b') s.erase(0, 2);
  if (s.empty() || s.front() == '_' || s.back() == '_' || s.find("__") != std::string::npos) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c == '_') continue;
    const int d = ::isdigit(c) ? c - '0' : ::isalpha(c) ? (c | 0x20) - 'a' + 10 : 99;
    if (d >= base) return std::nullopt;
    v = checked_add(checked_mul(v, base), d);
  }
  return negative ? -v : v;
}

int64_t float_to_int(double d) {
  if (std::isnan(d)) fail("cannot convert float NaN to integer");
  if (std::isinf(d)) fail("cannot convert float infinity to integer");
  if (std::fabs(d) >= 9.2e18) fail("integer overflow (Python big integers are unsupported)");
  return static_cast<int64_t>(std::trunc(d));
}

Value filter_int(const Value& v, const CallArgs& args) {
  ArgBinder a("int", args, {"default", "base"});
  const Value fallback = a.get_or(0, Value::integer(0));
  if (v.is_undefined()) undefined_error(v);
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) return Value::integer(float_to_int(v.as_float()));
  if (v.is_string()) {
    if (auto i = parse_py_int(v.str(), a.get_int(1, 10))) return Value::integer(*i);
    if (auto f = parse_py_float(v.str())) {
      if (!std::isfinite(*f)) return fallback;  // int(float('inf')) is caught there in jinja2
      return Value::integer(float_to_int(*f));
    }
  }
  return fallback;
}

Value filter_float(const Value& v, const CallArgs& args) {
  ArgBinder a("float", args, {"default"});
  if (v.is_undefined()) undefined_error(v);
  if (v.is_number()) return Value::floating(v.as_float());
  if (v.is_string())
    if (auto f = parse_py_float(v.str())) return Value::floating(*f);
  return a.get_or(0, Value::floating(0.0));
}

Value filter_tojson(const Value& v, const CallArgs& args) {
  ArgBinder a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = a.get_bool(0, false);
  const Value indent = a.get_or(1, Value::none());
  if (indent.is_int() || indent.is_bool())
    o.indent = std::string(size_t(std::max<int64_t>(0, std::min<int64_t>(indent.as_int(), 1000))), ' ');
  else if (indent.is_string())
    o.indent = indent.str();
  else if (!indent.is_none())
    fail("tojson: indent must be an int or a string");
  if (o.indent) o.item_separator = ",";
  const Value seps = a.get_or(2, Value::none());
  if (!seps.is_none()) {
    const std::vector<Value> parts = iterate(seps);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string())
      fail("tojson: separators must be two strings");
    o.item_separator = parts[0].str();
    o.key_separator = parts[1].str();
  }
  o.sort_keys = a.get_bool(3, false);
  return str_value(to_json(v, o));
}

Value filter_default(const Value& v, const CallArgs& args) {
  ArgBinder a("default", args, {"default_value", "boolean"});
  if (v.is_undefined() || (a.get_bool(1, false) && !truthy(v))) return a.get_or(0, Value::string(""));
  return v;
}

Value filter_join(const Value& v, const CallArgs& args) {
  ArgBinder a("join", args, {"d", "attribute"});
  const std::string sep = a.get_str(0, "");
  const std::vector<Value> parts = attribute_parts(a.get_or(1, Value::none()));
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += py_str(get_attribute(item, parts));
    if (out.size() > kMaxValueSize) fail("join: result too large");
  }
  return str_value(std::move(out));
}

Value filter_first(const Value& v, const CallArgs& args) {
  ArgBinder("first", args, {});
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value filter_last(const Value& v, const CallArgs& args) {
  ArgBinder("last", args, {});
  if (v.is_seq(Seq::generator)) fail("'generator' object is not reversible");
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value filter_reverse(const Value& v, const CallArgs& args) {
  ArgBinder("reverse", args, {});
  if (v.is_string()) {
    std::vector<uint32_t> cps = code_points(v.str());
    std::reverse(cps.begin(), cps.end());
    return str_value(from_code_points(cps, 0, cps.size()));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  // reversed() gives an iterator; only a generator it cannot reverse becomes a list.
  return Value::list(std::move(items), v.is_seq(Seq::generator) ? Seq::list : Seq::generator);
}

Value filter_replace(const Value& v, const CallArgs& args) {
  ArgBinder a("replace", args, {"old", "new", "count"});
  return str_value(py_replace(py_str(v), py_str(a.get(0)), py_str(a.get(1)), a.get_int(2, -1)));
}

Value filter_trim(const Value& v, const CallArgs& args) {
  ArgBinder a("trim", args, {"chars"});
  return str_value(py_strip(py_str(v), a.get_or(0, Value::none()), true, true));
}

Value filter_escape(const Value& v, const CallArgs& args) {
  ArgBinder("escape", args, {});
  return html_escape(v);
}

Value filter_indent(const Value& v, const CallArgs& args) {
  ArgBinder a("indent", args, {"width", "first", "blank"});
  const Value width = a.get_or(0, Value::integer(4));
  const std::string indention =
      width.is_string() ? width.str() : std::string(size_t(std::clamp<int64_t>(a.get_int(0, 4), 0, 1000)), ' ');
  const std::vector<std::string> lines = py_splitlines(py_str(v) + "\n", false);
  if (lines.size() * (indention.size() + 1) > kMaxValueSize) fail("indent: result too large");
  std::string rv;
  if (a.get_bool(2, false)) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  if (a.get_bool(1, false)) rv = indention + rv;
  return str_value(std::move(rv));
}

Value filter_round(const Value& v, const CallArgs& args) {
  ArgBinder a("round", args, {"precision", "method"});
  const int64_t precision = a.get_int(0, 0);
  const std::string method = a.get_str(1, "common");
  if (method != "common" && method != "floor" && method != "ceil")
    fail("round: method must be common, ceil or floor");
  if (!v.is_number()) fail("type {} doesn't define __round__ method", type_name(v));
  if (precision < -300 || precision > 300) fail("round: precision out of range");
  if (method == "common") {
    if (!v.is_float()) {
      if (precision >= 0) return Value::integer(v.as_int());
      fail("round: negative precision on integers is unsupported");
    }
    const double x = v.as_float();
    if (!std::isfinite(x) || precision >= 0) {
      if (!std::isfinite(x)) return v;
      // printf rounds the exact binary value half-to-even, as CPython's round() does.
      return Value::floating(std::strtod(fmt::format("{:.{}f}", x, precision).c_str(), nullptr));
    }
    const double scale = std::pow(10.0, double(-precision));
    return Value::floating(std::nearbyint(x / scale) * scale);
  }
  if (precision < 0) fail("round: negative precision with floor/ceil is unsupported");
  const double scale = std::pow(10.0, double(precision));
  const double scaled = v.as_float() * scale;
  const double r = method == "floor" ? std::floor(scaled) : std::ceil(scaled);
  return Value::floating(r / scale);
}

Value filter_map(const Value& v, const CallArgs& args) {
  std::vector<Value> out;
  if (!truthy(v)) return generator({});
  const auto attr = std::find_if(args.keyword.begin(), args.keyword.end(),
                                 [](const auto& kw) { return kw.first == "attribute"; });
  if (args.positional.empty() && attr != args.keyword.end()) {
    Value fallback = Value::none();
    for (const auto& [k, kv] : args.keyword) {
      if (k == "default") fallback = kv;
      else if (k != "attribute") fail("map: unexpected keyword argument '{}'", k);
    }
    const std::vector<Value> parts = attribute_parts(attr->second);
    for (const Value& item : iterate(v)) out.push_back(get_attribute(item, parts, fallback));
    return generator(std::move(out));
  }
  if (args.positional.empty()) fail("map requires a filter argument");
  CallArgs rest{{args.positional.begin() + 1, args.positional.end()}, args.keyword};
  const std::string name = py_str(args.positional[0]);
  for (const Value& item : iterate(v)) out.push_back(apply_filter(name, item, rest));
  return generator(std::move(out));
}

Value select_or_reject(const Value& v, const CallArgs& args, bool select, bool by_attribute) {
  if (!truthy(v)) return generator({});
  size_t off = 0;
  std::vector<Value> parts;
  if (by_attribute) {
    if (args.positional.empty()) fail("Missing parameter for attribute name");
    parts = attribute_parts(args.positional[0]);
    off = 1;
  }
  const bool has_test_name = args.positional.size() > off;
  const std::string test = has_test_name ? py_str(args.positional[off]) : "";
  CallArgs rest;
  if (has_test_name) rest = {{args.positional.begin() + long(off) + 1, args.positional.end()}, args.keyword};
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    const Value probe = get_attribute(item, parts);
    const bool ok = has_test_name ? apply_test(test, probe, rest) : truthy(probe);
    if (ok == select) out.push_back(item);
  }
  return generator(std::move(out));
}

Value filter_sort(const Value& v, const CallArgs& args) {
  ArgBinder a("sort", args, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = reverse_flag(a, 0), case_sensitive = a.get_bool(1, false);
  const std::vector<Value> parts = attribute_parts(a.get_or(2, Value::none()));
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : iterate(v)) keyed.emplace_back(sort_key(item, parts, case_sensitive), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? py_less(y.first, x.first) : py_less(x.first, y.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value filter_dictsort(const Value& v, const CallArgs& args) {
  ArgBinder a("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) fail("dictsort: expected a mapping, got {}", type_name(v));
  const std::string by = a.get_str(1, "key");
  if (by != "key" && by != "value") fail("You can only sort by either 'key' or 'value'");
  const bool case_sensitive = a.get_bool(0, false), reverse = reverse_flag(a, 2);
  std::vector<std::pair<Value, Value>> items = v.dict().entries;
  auto key = [&](const std::pair<Value, Value>& e) {
    const Value& k = by == "key" ? e.first : e.second;
    return case_sensitive ? k : ignore_case(k);
  };
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    return reverse ? py_less(key(y), key(x)) : py_less(key(x), key(y));
  });
  std::vector<Value> out;
  for (auto& [k, val] : items) out.push_back(Value::list({k, val}, Seq::tuple));
  return Value::list(std::move(out));
}

Value filter_items(const Value& v, const CallArgs& args) {
  ArgBinder("items", args, {});
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict().entries) out.push_back(Value::list({k, val}, Seq::tuple));
  return generator(std::move(out));
}

Value filter_unique(const Value& v, const CallArgs& args) {
  ArgBinder a("unique", args, {"case_sensitive", "attribute"});
  const bool case_sensitive = a.get_bool(0, false);
  const std::vector<Value> parts = attribute_parts(a.get_or(1, Value::none()));
  std::vector<Value> seen, out;
  for (const Value& item : iterate(v)) {
    const Value key = sort_key(item, parts, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return generator(std::move(out));
}

Value min_max(const Value& v, const CallArgs& args, bool want_max) {
  ArgBinder a(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  const bool case_sensitive = a.get_bool(0, false);
  const std::vector<Value> parts = attribute_parts(a.get_or(1, Value::none()));
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    const Value k = sort_key(items[i], parts, case_sensitive);
    const Value b = sort_key(items[best], parts, case_sensitive);
    if (want_max ? py_less(b, k) : py_less(k, b)) best = i;
  }
  return items[best];
}

Value filter_sum(const Value& v, const CallArgs& args) {
  ArgBinder a("sum", args, {"attribute", "start"});
  const std::vector<Value> parts = attribute_parts(a.get_or(0, Value::none()));
  Value total = a.get_or(1, Value::integer(0));
  if (total.is_string()) fail("sum() can't sum strings [use ''.join(seq) instead]");
  for (const Value& item : iterate(v)) total = binary_op(BinaryOp::add, total, get_attribute(item, parts));
  return total;
}

Value filter_title(const Value& v, const CallArgs& args) {
  ArgBinder("title", args, {});
  // jinja2 splits before runs of - whitespace ( { [ < and upper-cases each piece's first letter.
  const std::vector<uint32_t> cps = code_points(py_str(v));
  auto is_sep = [](uint32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
  };
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    const bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    if (sep) {
      out += from_code_points(cps, i, j);
    } else {
      out += py_upper(from_code_points(cps, i, i + 1));
      out += py_lower(from_code_points(cps, i + 1, j));
    }
    i = j;
  }
  return str_value(std::move(out));
}

Value filter_format(const Value& v, const CallArgs& args) {
  if (!args.keyword.empty()) fail("format filter with keyword arguments is unsupported");
  return str_value(percent_format(py_str(v), Value::list(args.positional, Seq::tuple)));
}

FilterFn no_args(const char* name, std::function<Value(const Value&)> f) {
  return [name, f](const Value& v, const CallArgs& args) {
    ArgBinder(name, args, {});
    return f(v);
  };
}

FilterFn string_fn(const char* name, std::string (*f)(std::string_view)) {
  return no_args(name, [f](const Value& v) { return str_value(f(py_str(v))); });
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = [] {
    std::unordered_map<std::string, FilterFn> t;
    t["tojson"] = filter_tojson;
    t["default"] = t["d"] = filter_default;
    t["length"] = t["count"] = no_args("length", [](const Value& v) { return Value::integer(py_len(v)); });
    t["first"] = filter_first;
    t["last"] = filter_last;
    t["join"] = filter_join;
    t["list"] = no_args("list", to_list);
    t["string"] = no_args("string", [](const Value& v) { return v.is_markup() ? v : str_value(py_str(v)); });
    t["safe"] = no_args("safe", [](const Value& v) { return Value::markup(py_str(v)); });
    t["trim"] = filter_trim;
    t["lower"] = string_fn("lower", py_lower);
    t["upper"] = string_fn("upper", py_upper);
    t["capitalize"] = string_fn("capitalize", py_capitalize);
    t["title"] = filter_title;
    t["int"] = filter_int;
    t["float"] = filter_float;
    t["abs"] = no_args("abs", [](const Value& v) {
      if (v.is_float()) return Value::floating(std::fabs(v.as_float()));
      if (v.is_int() || v.is_bool()) return v.as_int() < 0 ? negate(v) : Value::integer(v.as_int());
      fail("bad operand type for abs(): '{}'", type_name(v));
    });
    t["round"] = filter_round;
    t["replace"] = filter_replace;
    t["reverse"] = filter_reverse;
    t["escape"] = t["e"] = filter_escape;
    t["forceescape"] = no_args("forceescape", [](const Value& v) {
      return html_escape(Value::string(py_str(v)));
    });
    t["indent"] = filter_indent;
    t["items"] = filter_items;
    t["map"] = filter_map;
    t["select"] = [](const Value& v, const CallArgs& a) { return select_or_reject(v, a, true, false); };
    t["reject"] = [](const Value& v, const CallArgs& a) { return select_or_reject(v, a, false, false); };
    t["selectattr"] = [](const Value& v, const CallArgs& a) { return select_or_reject(v, a, true, true); };
    t["rejectattr"] = [](const Value& v, const CallArgs& a) { return select_or_reject(v, a, false, true); };
    t["sort"] = filter_sort;
    t["dictsort"] = filter_dictsort;
    t["unique"] = filter_unique;
    t["min"] = [](const Value& v, const CallArgs& a) { return min_max(v, a, false); };
    t["max"] = [](const Value& v, const CallArgs& a) { return min_max(v, a, true); };
    t["sum"] = filter_sum;
    t["format"] = filter_format;
    t["attr"] = [](const Value& v, const CallArgs& args) {
      ArgBinder a("attr", args, {"name"});
      const std::string name = py_str(a.get(0));
      if (auto attr = python_attr(v, name)) return *attr;
      return Value::undefined(fmt::format("'{}' object has no attribute '{}'", type_name(v), name));
    };
    t["center"] = [](const Value& v, const CallArgs& args) {
      ArgBinder a("center", args, {"width"});
      CallArgs inner{{Value::integer(a.get_int(0, 80))}, {}};
      return builtin_method(Value::string(py_str(v)), "center")->object().call(inner);
    };
    return t;
  }();
  return table;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) != 0; }

Value apply_filter(const std::string& name, const Value& input, const CallArgs& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) fail("no filter named '{}' (unsupported by this template engine)", name);
  return it->second(input, args);
}

}  // namespace fp4llm::tmpl
