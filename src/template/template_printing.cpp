#include "template/template_printing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "template/template_ops.hpp"
#include "template/template_unicode.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

std::string join_repr(const std::vector<Value>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += py_repr(items[i]);
    if (out.size() > kMaxValueSize) fail("printed value too large (limit {} bytes)", kMaxValueSize);
  }
  return out;
}

std::string list_repr(const List& list) {
  switch (list.seq) {
    case Seq::list:
      return "[" + join_repr(list.items) + "]";
    case Seq::tuple:
      return "(" + join_repr(list.items) + (list.items.size() == 1 ? ",)" : ")");
    case Seq::dict_keys:
      return "dict_keys([" + join_repr(list.items) + "])";
    case Seq::dict_values:
      return "dict_values([" + join_repr(list.items) + "])";
    case Seq::dict_items:
      return "dict_items([" + join_repr(list.items) + "])";
    case Seq::range:
      if (list.range_step == 1) return fmt::format("range({}, {})", list.range_start, list.range_stop);
      return fmt::format("range({}, {}, {})", list.range_start, list.range_stop, list.range_step);
    case Seq::generator:
      break;
  }
  fail("cannot print a generator (Python would print its memory address); convert it with |list");
}

std::string dict_repr(const Dict& dict) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : dict.entries) {
    if (!first) out += ", ";
    first = false;
    out += py_repr(k) + ": " + py_repr(v);
  }
  return out + "}";
}

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t cp = next_code_point(s, pos);
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp < 0x20) {
      out += fmt::format("\\u{:04x}", cp);
    } else if (cp >= 0x80 && ensure_ascii) {
      if (cp >= 0x10000) {
        const uint32_t v = cp - 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        out += fmt::format("\\u{:04x}", cp);
      }
    } else {
      append_utf8(out, cp);
    }
  }
  out += '"';
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return float_repr(d);
}

// json.dumps turns non-string keys into strings; other key types are a TypeError.
std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Kind::string: return k.str();
    case Kind::boolean: return k.as_bool() ? "true" : "false";
    case Kind::none: return "null";
    case Kind::integer: return std::to_string(k.as_int());
    case Kind::floating: return json_float(k.as_float());
    default: fail("keys must be str, int, float, bool or None, not {}", type_name(k));
  }
}

class JsonWriter {
 public:
  JsonWriter(const JsonOptions& options, std::string& out) : opt_(options), out_(out) {}

  void write(const Value& v, int depth) {
    if (depth > 200) fail("tojson: value nested too deeply");
    if (out_.size() > kMaxValueSize) fail("tojson: output too large (limit {} bytes)", kMaxValueSize);
    switch (v.kind()) {
      case Kind::none: out_ += "null"; return;
      case Kind::boolean: out_ += v.as_bool() ? "true" : "false"; return;
      case Kind::integer: out_ += std::to_string(v.as_int()); return;
      case Kind::floating: out_ += json_float(v.as_float()); return;
      case Kind::string: append_json_string(out_, v.str(), opt_.ensure_ascii); return;
      case Kind::list:
        if (v.is_seq(Seq::list) || v.is_seq(Seq::tuple)) return write_list(v.list().items, depth);
        break;
      case Kind::dict: return write_dict(v.dict(), depth);
      default: break;
    }
    fail("Object of type {} is not JSON serializable", type_name(v));
  }

 private:
  void newline(int depth) {
    if (!opt_.indent) return;
    out_ += '\n';
    for (int i = 0; i < depth; ++i) out_ += *opt_.indent;
  }

  void write_list(const std::vector<Value>& items, int depth) {
    if (items.empty()) {
      out_ += "[]";
      return;
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out_ += opt_.item_separator;
      newline(depth + 1);
      write(items[i], depth + 1);
    }
    newline(depth);
    out_ += ']';
  }

  void write_dict(const Dict& dict, int depth) {
    if (dict.entries.empty()) {
      out_ += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& e : dict.entries) entries.push_back(&e);
    if (opt_.sort_keys)
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto* a, const auto* b) { return py_less(a->first, b->first); });
    out_ += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i) out_ += opt_.item_separator;
      newline(depth + 1);
      append_json_string(out_, json_key(entries[i]->first), opt_.ensure_ascii);
      out_ += opt_.key_separator;
      write(entries[i]->second, depth + 1);
    }
    newline(depth);
    out_ += '}';
  }

  const JsonOptions& opt_;
  std::string& out_;
};

}  // namespace

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  // Shortest round-trip digits, then laid out as Python's repr does: positional notation for
  // exponents in [-4, 16), scientific with a two-digit exponent otherwise.
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  const int exponent = std::stoi(sci.substr(e + 1));
  std::string mantissa = sci.substr(0, e);
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exponent >= 16 || exponent < -4) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out;
  }
  if (exponent < 0) return out + "0." + std::string(-exponent - 1, '0') + digits;
  const size_t int_digits = exponent + 1;
  if (digits.size() <= int_digits) return out + digits + std::string(int_digits - digits.size(), '0') + ".0";
  return out + digits.substr(0, int_digits) + "." + digits.substr(int_digits);
}

std::string string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t cp = next_code_point(s, pos);
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7F) {
      out += fmt::format("\\x{:02x}", cp);
    } else if (cp < 0x7F || py_isprintable(cp)) {
      append_utf8(out, cp);
    } else if (cp <= 0xFF) {
      out += fmt::format("\\x{:02x}", cp);
    } else if (cp <= 0xFFFF) {
      out += fmt::format("\\u{:04x}", cp);
    } else {
      out += fmt::format("\\U{:08x}", cp);
    }
  }
  out += quote;
  return out;
}

std::string py_str(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return "";
    case Kind::string: return v.str();
    default: return py_repr(v);
  }
}

std::string py_repr(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return "Undefined";
    case Kind::none: return "None";
    case Kind::boolean: return v.as_bool() ? "True" : "False";
    case Kind::integer: return std::to_string(v.as_int());
    case Kind::floating: return float_repr(v.as_float());
    case Kind::string: return v.is_markup() ? "Markup(" + string_repr(v.str()) + ")" : string_repr(v.str());
    case Kind::list: return list_repr(v.list());
    case Kind::dict: return dict_repr(v.dict());
    case Kind::object: return v.object().repr();
  }
  return "";
}

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  JsonWriter(options, out).write(v, 0);
  return out;
}

}  // namespace fp4llm::tmpl
