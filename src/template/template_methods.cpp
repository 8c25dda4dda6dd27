#include "template/template_methods.hpp"

#include <algorithm>
#include <array>

#include "template/template_args.hpp"
#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "template/template_unicode.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

using Cps = std::vector<uint32_t>;

const std::string& need_str(const Value& v, std::string_view fn) {
  if (!v.is_string()) fail("{}() argument must be str, not {}", fn, type_name(v));
  return v.str();
}

Value str_list(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  for (const auto& p : parts) items.push_back(Value::string(p));
  return Value::list(std::move(items));
}

// Python's optional start/end arguments of find(), count(), startswith(): a code point slice.
std::string sub_range(const std::string& s, const ArgBinder& a, size_t start_arg, int64_t* offset) {
  const Value start = a.get_or(start_arg, Value::none());
  const Value end = a.get_or(start_arg + 1, Value::none());
  *offset = 0;
  if (start.is_none() && end.is_none()) return s;
  const Value sliced = slice(Value::string(s), start, end, Value::none());
  if (!start.is_none()) {
    int64_t st = start.as_int(), len = py_len(Value::string(s));
    *offset = st < 0 ? std::max<int64_t>(0, st + len) : std::min(st, len);
  }
  return sliced.str();
}

int64_t cp_index(const std::string& s, size_t byte_pos) {
  return static_cast<int64_t>(code_point_count(std::string_view(s).substr(0, byte_pos)));
}

bool affix_match(const Value& affix, const std::string& s, bool prefix, std::string_view fn) {
  auto one = [&](const Value& v) {
    const std::string& a = need_str(v, fn);
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_seq(Seq::tuple)) {
    return std::any_of(affix.list().items.begin(), affix.list().items.end(), one);
  }
  return one(affix);
}

Value find_method(const std::string& s, const CallArgs& args, std::string_view fn, bool reverse) {
  ArgBinder a(fn, args, {"sub", "start", "end"});
  const std::string& sub = need_str(a.get(0), fn);
  int64_t offset = 0;
  const std::string hay = sub_range(s, a, 1, &offset);
  const size_t pos = reverse ? hay.rfind(sub) : hay.find(sub);
  if (pos == std::string::npos) {
    if (fn == "index" || fn == "rindex") fail("substring not found");
    return Value::integer(-1);
  }
  return Value::integer(offset + cp_index(hay, pos));
}

Value count_method(const std::string& s, const CallArgs& args) {
  ArgBinder a("count", args, {"sub", "start", "end"});
  const std::string& sub = need_str(a.get(0), "count");
  int64_t offset = 0;
  const std::string hay = sub_range(s, a, 1, &offset);
  if (sub.empty()) return Value::integer(static_cast<int64_t>(code_point_count(hay)) + 1);
  int64_t n = 0;
  for (size_t pos = hay.find(sub); pos != std::string::npos; pos = hay.find(sub, pos + sub.size()))
    ++n;
  return Value::integer(n);
}

Value pad_method(const std::string& s, const CallArgs& args, std::string_view fn) {
  ArgBinder a(fn, args, {"width", "fillchar"});
  const int64_t width = a.get_int(0, 0);
  const std::string fill = a.has(1) ? need_str(a.get(1), fn) : " ";
  if (code_point_count(fill) != 1) fail("The fill character must be exactly one character long");
  const int64_t len = static_cast<int64_t>(code_point_count(s));
  if (width <= len) return Value::string(s);
  if (width > static_cast<int64_t>(kMaxValueSize)) fail("{}(): width too large", fn);
  const int64_t pad = width - len;
  int64_t left = 0;
  if (fn == "rjust") left = pad;
  if (fn == "center") left = pad / 2 + (pad & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = left; i < pad; ++i) out += fill;
  return Value::string(std::move(out));
}

Value zfill_method(const std::string& s, const CallArgs& args) {
  ArgBinder a("zfill", args, {"width"});
  const int64_t width = a.get_int(0, 0);
  const int64_t len = static_cast<int64_t>(code_point_count(s));
  if (width <= len) return Value::string(s);
  if (width > static_cast<int64_t>(kMaxValueSize)) fail("zfill(): width too large");
  std::string out = s;
  const size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  out.insert(sign, std::string(size_t(width - len), '0'));
  return Value::string(std::move(out));
}

Value join_method(const std::string& sep, const CallArgs& args) {
  ArgBinder a("join", args, {"iterable"});
  std::string out;
  bool first = true;
  for (const Value& v : iterate(a.get(0))) {
    if (!v.is_string()) fail("sequence item: expected str instance, {} found", type_name(v));
    if (!first) out += sep;
    first = false;
    out += v.str();
    if (out.size() > kMaxValueSize) fail("join(): result too large");
  }
  return Value::string(std::move(out));
}

Value partition_method(const std::string& s, const CallArgs& args, bool reverse) {
  ArgBinder a(reverse ? "rpartition" : "partition", args, {"sep"});
  const std::string& sep = need_str(a.get(0), "partition");
  if (sep.empty()) fail("empty separator");
  const size_t pos = reverse ? s.rfind(sep) : s.find(sep);
  std::vector<Value> parts;
  if (pos == std::string::npos) {
    parts = reverse ? std::vector<Value>{Value::string(""), Value::string(""), Value::string(s)}
                    : std::vector<Value>{Value::string(s), Value::string(""), Value::string("")};
  } else {
    parts = {Value::string(s.substr(0, pos)), Value::string(sep),
             Value::string(s.substr(pos + sep.size()))};
  }
  return Value::list(std::move(parts), Seq::tuple);
}

template <typename Pred>
Value all_chars(const std::string& s, Pred pred) {
  const Cps cps = code_points(s);
  return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), pred));
}

Value case_test(const std::string& s, bool lower) {
  bool cased = false;
  for (uint32_t c : code_points(s)) {
    if (lower ? py_isupper_cp(c) : py_islower_cp(c)) return Value::boolean(false);
    if (lower ? py_islower_cp(c) : py_isupper_cp(c)) cased = true;
  }
  return Value::boolean(cased);
}

// str.format with plain {} / {0} / {name} fields; format specs and conversions are refused.
Value format_method(const std::string& s, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  bool manual = false, automatic = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '}' ) {
      if (i + 1 < s.size() && s[i + 1] == '}') { out += '}'; ++i; continue; }
      fail("Single '}}' encountered in format string");
    }
    if (c != '{') { out += c; continue; }
    if (i + 1 < s.size() && s[i + 1] == '{') { out += '{'; ++i; continue; }
    const size_t close = s.find('}', i);
    if (close == std::string::npos) fail("Single '{{' encountered in format string");
    const std::string field = s.substr(i + 1, close - i - 1);
    i = close;
    if (field.find_first_of(":!.[") != std::string::npos)
      fail("str.format(): format specs and conversions are unsupported ('{{{}}}')", field);
    const Value* v = nullptr;
    if (field.empty() || std::all_of(field.begin(), field.end(), ::isdigit)) {
      (field.empty() ? automatic : manual) = true;
      if (manual && automatic)
        fail("cannot switch between manual field specification and automatic field numbering");
      const size_t index = field.empty() ? auto_index++ : std::stoul(field.substr(0, 9));
      if (index >= args.positional.size()) fail("Replacement index {} out of range", index);
      v = &args.positional[index];
    } else {
      for (const auto& [k, kv] : args.keyword)
        if (k == field) v = &kv;
      if (!v) fail("str.format(): missing keyword argument '{}'", field);
    }
    out += py_str(*v);
  }
  return Value::string(std::move(out));
}

Value string_method(const std::string& s, const std::string& name, const CallArgs& args) {
  if (name == "startswith" || name == "endswith") {
    ArgBinder a(name, args, {"affix", "start", "end"});
    int64_t offset = 0;
    const std::string hay = sub_range(s, a, 1, &offset);
    return Value::boolean(affix_match(a.get(0), hay, name == "startswith", name));
  }
  if (name == "split" || name == "rsplit") {
    ArgBinder a(name, args, {"sep", "maxsplit"});
    return str_list(py_split(s, a.get_or(0, Value::none()), a.get_int(1, -1), name == "rsplit"));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgBinder a(name, args, {"chars"});
    return Value::string(py_strip(s, a.get_or(0, Value::none()), name != "rstrip", name != "lstrip"));
  }
  auto no_args = [&] { ArgBinder(name, args, {}); };
  if (name == "lower") return no_args(), Value::string(py_lower(s));
  if (name == "upper") return no_args(), Value::string(py_upper(s));
  if (name == "title") return no_args(), Value::string(py_title(s));
  if (name == "capitalize") return no_args(), Value::string(py_capitalize(s));
  if (name == "swapcase") return no_args(), Value::string(py_swapcase(s));
  if (name == "casefold") return no_args(), Value::string(py_casefold(s));
  if (name == "replace") {
    ArgBinder a(name, args, {"old", "new", "count"});
    return Value::string(py_replace(s, need_str(a.get(0), name), need_str(a.get(1), name), a.get_int(2, -1)));
  }
  if (name == "find" || name == "index") return find_method(s, args, name, false);
  if (name == "rfind" || name == "rindex") return find_method(s, args, name, true);
  if (name == "count") return count_method(s, args);
  if (name == "join") return join_method(s, args);
  if (name == "isdigit") return no_args(), all_chars(s, py_isdigit);
  if (name == "isalpha") return no_args(), all_chars(s, py_isalpha);
  if (name == "isalnum") return no_args(), all_chars(s, py_isalnum);
  if (name == "isspace") return no_args(), all_chars(s, py_isspace);
  if (name == "isascii") return no_args(), Value::boolean(is_ascii(s));
  if (name == "islower") return no_args(), case_test(s, true);
  if (name == "isupper") return no_args(), case_test(s, false);
  if (name == "ljust" || name == "rjust" || name == "center") return pad_method(s, args, name);
  if (name == "zfill") return zfill_method(s, args);
  if (name == "removeprefix" || name == "removesuffix") {
    ArgBinder a(name, args, {"affix"});
    const std::string& affix = need_str(a.get(0), name);
    if (!affix_match(a.get(0), s, name == "removeprefix", name)) return Value::string(s);
    return Value::string(name == "removeprefix" ? s.substr(affix.size())
                                                : s.substr(0, s.size() - affix.size()));
  }
  if (name == "splitlines") {
    ArgBinder a(name, args, {"keepends"});
    return str_list(py_splitlines(s, a.get_bool(0, false)));
  }
  if (name == "partition" || name == "rpartition") return partition_method(s, args, name == "rpartition");
  if (name == "format") return format_method(s, args);
  fail("str.{}() is not supported by the template engine", name);
}

Value dict_method(const Value& self, const std::string& name, const CallArgs& args) {
  const Dict& d = self.dict();
  if (name == "get") {
    ArgBinder a("get", args, {"key", "default"});
    const Value* v = d.find(a.get(0));
    return v ? *v : a.get_or(1, Value::none());
  }
  ArgBinder(name, args, {});
  if (name == "copy") return self;
  std::vector<Value> items;
  for (const auto& [k, v] : d.entries) {
    if (name == "keys") items.push_back(k);
    if (name == "values") items.push_back(v);
    if (name == "items") items.push_back(Value::list({k, v}, Seq::tuple));
  }
  if (name == "keys") return Value::list(std::move(items), Seq::dict_keys);
  if (name == "values") return Value::list(std::move(items), Seq::dict_values);
  if (name == "items") return Value::list(std::move(items), Seq::dict_items);
  fail("dict.{}() is not supported by the template engine", name);
}

Value list_method(const Value& self, const std::string& name, const CallArgs& args) {
  const auto& items = self.list().items;
  if (name == "copy") return ArgBinder(name, args, {}), Value::list(items, Seq::list);
  ArgBinder a(name, args, {"value"});
  if (name == "count")
    return Value::integer(std::count_if(items.begin(), items.end(),
                                        [&](const Value& v) { return py_equal(v, a.get(0)); }));
  for (size_t i = 0; i < items.size(); ++i)
    if (py_equal(items[i], a.get(0))) return Value::integer(static_cast<int64_t>(i));
  fail("{} is not in list", py_repr(a.get(0)));
}

constexpr std::array kStrAttrs = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
    "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
    "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix",
    "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
    "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper",
    "zfill"};
constexpr std::array kDictAttrs = {"copy", "fromkeys", "get", "items", "keys", "values"};
constexpr std::array kDictMutators = {"clear", "pop", "popitem", "setdefault", "update"};
constexpr std::array kListAttrs = {"copy", "count", "index"};
constexpr std::array kListMutators = {"append", "clear",  "extend", "insert",
                                      "pop",    "remove", "reverse", "sort"};

template <size_t N>
bool one_of(const std::array<const char*, N>& names, const std::string& name) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

Value bind_method(const Value& self, const std::string& name,
           Value (*method)(const Value&, const std::string&, const CallArgs&)) {
  return make_function(name, [self, name, method](const CallArgs& args) {
    return method(self, name, args);
  });
}

Value unsafe(const Value& self, const std::string& name) {
  return Value::undefined(fmt::format(
      "access to attribute '{}' of '{}' object is unsafe (the sandbox is immutable)", name,
      type_name(self)));
}

}  // namespace

std::optional<Value> builtin_method(const Value& self, const std::string& name) {
  if (self.is_string() && one_of(kStrAttrs, name))
    return bind_method(self, name, [](const Value& s, const std::string& n, const CallArgs& a) {
      return string_method(s.str(), n, a);
    });
  if (self.is_dict()) {
    if (one_of(kDictMutators, name)) return unsafe(self, name);
    if (one_of(kDictAttrs, name)) return bind_method(self, name, dict_method);
  }
  const bool is_list = self.is_seq(Seq::list), is_tuple = self.is_seq(Seq::tuple);
  if (is_list && one_of(kListMutators, name)) return unsafe(self, name);
  if ((is_list && one_of(kListAttrs, name)) || (is_tuple && (name == "count" || name == "index")))
    return bind_method(self, name, list_method);
  return std::nullopt;
}

std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  const Cps cps = code_points(s);
  Cps strip_set;
  const bool whitespace = chars.is_none();
  if (!whitespace) strip_set = code_points(need_str(chars, "strip"));
  auto strippable = [&](uint32_t c) {
    return whitespace ? py_isspace(c)
                      : std::find(strip_set.begin(), strip_set.end(), c) != strip_set.end();
  };
  size_t begin = 0, end = cps.size();
  if (left)
    while (begin < end && strippable(cps[begin])) ++begin;
  if (right)
    while (end > begin && strippable(cps[end - 1])) --end;
  return from_code_points(cps, begin, end);
}

std::vector<std::string> py_split(const std::string& s, const Value& sep, int64_t maxsplit,
                                  bool from_right) {
  std::vector<std::string> out;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep.is_none()) {
    const Cps cps = code_points(s);
    const int64_t n = static_cast<int64_t>(cps.size());
    if (!from_right) {
      int64_t i = 0;
      while (maxsplit-- > 0) {
        while (i < n && py_isspace(cps[i])) ++i;
        if (i == n) break;
        const int64_t j = i++;
        while (i < n && !py_isspace(cps[i])) ++i;
        out.push_back(from_code_points(cps, j, i));
      }
      while (i < n && py_isspace(cps[i])) ++i;
      if (i < n) out.push_back(from_code_points(cps, i, n));
      return out;
    }
    int64_t i = n - 1;
    while (maxsplit-- > 0) {
      while (i >= 0 && py_isspace(cps[i])) --i;
      if (i < 0) break;
      const int64_t j = i--;
      while (i >= 0 && !py_isspace(cps[i])) --i;
      out.push_back(from_code_points(cps, i + 1, j + 1));
    }
    while (i >= 0 && py_isspace(cps[i])) --i;
    if (i >= 0) out.push_back(from_code_points(cps, 0, i + 1));
    std::reverse(out.begin(), out.end());
    return out;
  }
  const std::string& sp = need_str(sep, "split");
  if (sp.empty()) fail("empty separator");
  if (!from_right) {
    size_t start = 0;
    for (size_t pos; maxsplit > 0 && (pos = s.find(sp, start)) != std::string::npos; --maxsplit) {
      out.push_back(s.substr(start, pos - start));
      start = pos + sp.size();
    }
    out.push_back(s.substr(start));
    return out;
  }
  size_t end = s.size();
  while (maxsplit > 0 && end >= sp.size()) {
    const size_t pos = s.rfind(sp, end - sp.size());
    if (pos == std::string::npos) break;
    out.push_back(s.substr(pos + sp.size(), end - pos - sp.size()));
    end = pos;
    --maxsplit;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl,
                       int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {
    const Cps cps = code_points(s);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count > 0) {
        out += repl;
        --count;
      }
      if (i < cps.size()) append_utf8(out, cps[i]);
      if (out.size() > kMaxValueSize) fail("replace(): result too large");
    }
    return out;
  }
  size_t start = 0;
  for (size_t pos; count > 0 && (pos = s.find(old, start)) != std::string::npos; --count) {
    out.append(s, start, pos - start);
    out += repl;
    start = pos + old.size();
    if (out.size() > kMaxValueSize) fail("replace(): result too large");
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::vector<std::string> py_splitlines(const std::string& s, bool keepends) {
  const Cps cps = code_points(s);
  auto is_break = [](uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
           c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
  };
  std::vector<std::string> out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    while (j < cps.size() && !is_break(cps[j])) ++j;
    size_t eol = j;
    if (j < cps.size()) {
      eol = (cps[j] == '\r' && j + 1 < cps.size() && cps[j + 1] == '\n') ? j + 2 : j + 1;
    }
    out.push_back(from_code_points(cps, i, keepends ? eol : j));
    i = eol;
  }
  return out;
}

}  // namespace fp4llm::tmpl
