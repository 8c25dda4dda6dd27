// Python's operators and protocols on template values: truth, ==, <, arithmetic, `in`, len(),
// iteration, indexing and slicing, plus the sandboxed attribute lookup jinja2 does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "template/template_value.hpp"

namespace fp4llm::tmpl {

// Largest string or list an operator may build, so that 'x' * 10**12 fails cleanly.
inline constexpr size_t kMaxValueSize = size_t{64} << 20;

enum class BinaryOp { add, sub, mul, div, floordiv, mod, pow };

[[noreturn]] void undefined_error(const Value& undefined);
bool truthy(const Value& v);
bool py_equal(const Value& a, const Value& b);
bool py_less(const Value& a, const Value& b);  // throws TypeError-like errors as Python does
Value binary_op(BinaryOp op, const Value& a, const Value& b);
Value negate(const Value& v);
Value positive(const Value& v);
bool contains(const Value& container, const Value& item);
int64_t py_len(const Value& v);
std::vector<Value> iterate(const Value& v);
// A plain list or tuple of `v`'s items, as list(v) gives.
Value to_list(const Value& v);

// Sandboxed obj.name and obj[key] as jinja2's ImmutableSandboxedEnvironment does them.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// Only Python's getattr(obj, name), without the item fallback (the attr filter).
std::optional<Value> python_attr(const Value& obj, const std::string& name);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python's int arithmetic helpers, with overflow as an error.
int64_t checked_add(int64_t a, int64_t b);
int64_t checked_mul(int64_t a, int64_t b);
// markupsafe.escape(): & < > " ' as HTML entities; Markup strings pass unchanged.
Value html_escape(const Value& v);
// printf-style formatting: format % args.
std::string percent_format(const std::string& format, const Value& args);

}  // namespace fp4llm::tmpl
