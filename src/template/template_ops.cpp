#include "template/template_ops.hpp"

#include <cmath>

#include "template/template_printing.hpp"
#include "template/template_unicode.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

bool is_int_like(const Value& v) { return v.is_int() || v.is_bool(); }

bool same_sequence_type(const Value& a, const Value& b) {
  return a.is_list() && b.is_list() && a.list().seq == b.list().seq;
}

bool dict_equal(const Dict& a, const Dict& b) {
  if (a.entries.size() != b.entries.size()) return false;
  for (const auto& [k, v] : a.entries) {
    const Value* other = b.find(k);
    if (!other || !py_equal(v, *other)) return false;
  }
  return true;
}

bool list_equal(const Value& a, const Value& b) {
  const Seq seq = a.list().seq;
  if (seq == Seq::generator) return a.list().items.empty() && &a.list() == &b.list();
  const auto& x = a.list().items;
  const auto& y = b.list().items;
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (!py_equal(x[i], y[i])) return false;
  return true;
}

[[noreturn]] void unsupported_operands(const char* op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b));
}

void check_size(size_t n) {
  if (n > kMaxValueSize) fail("value too large: {} elements/bytes (limit {})", n, kMaxValueSize);
}

// size * times without overflowing the product (fuzzing found 8 * 4**31 wrapping to 0).
void check_repeat(size_t size, int64_t times) {
  if (static_cast<uint64_t>(times) > kMaxValueSize / size)
    fail("value too large: {} * {} elements/bytes (limit {})", size, times, kMaxValueSize);
}

Value repeat(const Value& seq, int64_t times) {
  const bool empty = seq.is_string() ? seq.str().empty() : seq.list().items.empty();
  if (times <= 0 || empty) return seq.is_string() ? Value::string("") : Value::list({}, seq.list().seq);
  if (seq.is_string()) {
    check_repeat(seq.str().size(), times);
    std::string out;
    out.reserve(seq.str().size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  check_repeat(seq.list().items.size(), times);
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i)
    out.insert(out.end(), seq.list().items.begin(), seq.list().items.end());
  return Value::list(std::move(out), seq.list().seq);
}

// Python's float floor division and modulo (the result takes the divisor's sign).
double float_mod(double x, double y) {
  double mod = std::fmod(x, y);
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) mod += y;
  } else {
    mod = std::copysign(0.0, y);
  }
  return mod;
}

double float_floordiv(double x, double y) {
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0 && (y < 0) != (mod < 0)) div -= 1.0;
  if (div == 0) return std::copysign(0.0, x / y);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

int64_t int_floordiv(int64_t a, int64_t b) {
  if (a == INT64_MIN && b == -1) fail("integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 0) fail("0.0 cannot be raised to a negative power");
    return Value::floating(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  }
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = checked_mul(result, base);
    exp >>= 1;
    if (exp > 0) base = checked_mul(base, base);
  }
  return Value::integer(result);
}

Value float_pow(double a, double b) {
  if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
  if (a < 0 && b != std::floor(b) && std::isfinite(b))
    fail("a negative number raised to a fractional power is complex (unsupported)");
  const double r = std::pow(a, b);
  if (std::isinf(r) && std::isfinite(a) && std::isfinite(b)) fail("float pow: Numerical result out of range");
  return Value::floating(r);
}

Value number_op(BinaryOp op, const Value& a, const Value& b) {
  if (is_int_like(a) && is_int_like(b)) {
    const int64_t x = a.as_int(), y = b.as_int();
    switch (op) {
      case BinaryOp::add: return Value::integer(checked_add(x, y));
      case BinaryOp::sub:
        if (y == INT64_MIN) fail("integer overflow");
        return Value::integer(checked_add(x, -y));
      case BinaryOp::mul: return Value::integer(checked_mul(x, y));
      case BinaryOp::div:
        if (y == 0) fail("division by zero");
        return Value::floating(static_cast<double>(x) / static_cast<double>(y));
      case BinaryOp::floordiv:
        if (y == 0) fail("integer division or modulo by zero");
        return Value::integer(int_floordiv(x, y));
      case BinaryOp::mod:
        if (y == 0) fail("integer division or modulo by zero");
        return Value::integer(int_mod(x, y));
      case BinaryOp::pow: return int_pow(x, y);
    }
  }
  const double x = a.as_float(), y = b.as_float();
  switch (op) {
    case BinaryOp::add: return Value::floating(x + y);
    case BinaryOp::sub: return Value::floating(x - y);
    case BinaryOp::mul: return Value::floating(x * y);
    case BinaryOp::div:
      if (y == 0) fail("float division by zero");
      return Value::floating(x / y);
    case BinaryOp::floordiv:
      if (y == 0) fail("float floor division by zero");
      return Value::floating(float_floordiv(x, y));
    case BinaryOp::mod:
      if (y == 0) fail("float modulo");
      return Value::floating(float_mod(x, y));
    case BinaryOp::pow: return float_pow(x, y);
  }
  return {};
}

const char* op_symbol(BinaryOp op) {
  static const char* symbols[] = {"+", "-", "*", "/", "//", "%", "** or pow()"};
  return symbols[static_cast<int>(op)];
}

// Python slice.indices(): clamps start/stop for a sequence of `len` items.
void slice_indices(int64_t len, const Value& start_v, const Value& stop_v, int64_t step,
                   int64_t& start, int64_t& stop) {
  auto bound = [&](const Value& v, int64_t dflt_pos, int64_t dflt_neg) {
    if (v.is_none()) return step > 0 ? dflt_pos : dflt_neg;
    if (!is_int_like(v)) fail("slice indices must be integers or None");
    int64_t i = v.as_int();
    if (i < 0) {
      i += len;
      if (i < 0) i = step > 0 ? 0 : -1;
    } else if (i >= len) {
      i = step > 0 ? len : len - 1;
    }
    return i;
  };
  start = bound(start_v, 0, len - 1);
  stop = bound(stop_v, len, -1);
}

std::vector<size_t> slice_positions(int64_t len, const Value& start_v, const Value& stop_v,
                                    const Value& step_v) {
  int64_t step = 1;
  if (!step_v.is_none()) {
    if (!is_int_like(step_v)) fail("slice indices must be integers or None");
    step = step_v.as_int();
    if (step == 0) fail("slice step cannot be zero");
  }
  int64_t start = 0, stop = 0;
  slice_indices(len, start_v, stop_v, step, start, stop);
  std::vector<size_t> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(size_t(i));
  return out;
}

std::string format_one(char conv, const Value& arg) {
  switch (conv) {
    case 's': return py_str(arg);
    case 'r': return py_repr(arg);
    case 'd':
    case 'i':
      if (is_int_like(arg)) return std::to_string(arg.as_int());
      if (arg.is_float() && std::isfinite(arg.as_float()))
        return std::to_string(static_cast<int64_t>(std::trunc(arg.as_float())));
      fail("%{} format: a real number is required, not {}", conv, type_name(arg));
    default: fail("unsupported format character '%{}' in string formatting", conv);
  }
}

}  // namespace

Value html_escape(const Value& v) {
  if (v.is_markup()) return v;
  std::string out;
  for (char c : py_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value::markup(std::move(out));
}

void undefined_error(const Value& undefined) {
  fail("{}", undefined.str().empty() ? std::string("value is undefined") : undefined.str());
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail("integer overflow (Python big integers are unsupported)");
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail("integer overflow (Python big integers are unsupported)");
  return r;
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean: return v.as_bool();
    case Kind::integer: return v.as_int() != 0;
    case Kind::floating: return v.as_float() != 0;
    case Kind::string: return !v.str().empty();
    case Kind::list: return v.list().seq == Seq::generator || !v.list().items.empty();
    case Kind::dict: return !v.dict().entries.empty();
    case Kind::object: return true;
  }
  return false;
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (is_int_like(a) && is_int_like(b)) return a.as_int() == b.as_int();
    return a.as_float() == b.as_float();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::undefined:
    case Kind::none: return true;
    case Kind::string: return a.str() == b.str();
    case Kind::list: return same_sequence_type(a, b) && list_equal(a, b);
    case Kind::dict: return dict_equal(a.dict(), b.dict());
    case Kind::object: return a.object_ptr() == b.object_ptr();
    default: return false;
  }
}

bool py_less(const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (is_int_like(a) && is_int_like(b)) return a.as_int() < b.as_int();
    return a.as_float() < b.as_float();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order == code points
  if (same_sequence_type(a, b) &&
      (a.list().seq == Seq::list || a.list().seq == Seq::tuple)) {
    const auto& x = a.list().items;
    const auto& y = b.list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!py_equal(x[i], y[i])) return py_less(x[i], y[i]);
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b));
}

Value binary_op(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) return number_op(op, a, b);
  if (op == BinaryOp::add && a.is_string() && b.is_string()) {
    check_size(a.str().size() + b.str().size());
    if (a.is_markup() || b.is_markup()) return Value::markup(html_escape(a).str() + html_escape(b).str());
    return Value::string(a.str() + b.str());
  }
  if (op == BinaryOp::add && same_sequence_type(a, b) &&
      (a.list().seq == Seq::list || a.list().seq == Seq::tuple)) {
    check_size(a.list().items.size() + b.list().items.size());
    std::vector<Value> items = a.list().items;
    items.insert(items.end(), b.list().items.begin(), b.list().items.end());
    return Value::list(std::move(items), a.list().seq);
  }
  if (op == BinaryOp::mul) {
    auto seq = [](const Value& v) {
      return v.is_string() || v.is_seq(Seq::list) || v.is_seq(Seq::tuple);
    };
    if (seq(a) && is_int_like(b)) return repeat(a, b.as_int());
    if (is_int_like(a) && seq(b)) return repeat(b, a.as_int());
  }
  if (op == BinaryOp::mod && a.is_string()) return Value::string(percent_format(a.str(), b));
  unsupported_operands(op_symbol(op), a, b);
}

Value negate(const Value& v) {
  if (v.is_undefined()) undefined_error(v);
  if (is_int_like(v)) {
    if (v.as_int() == INT64_MIN) fail("integer overflow");
    return Value::integer(-v.as_int());
  }
  if (v.is_float()) return Value::floating(-v.as_float());
  fail("bad operand type for unary -: '{}'", type_name(v));
}

Value positive(const Value& v) {
  if (v.is_undefined()) undefined_error(v);
  if (is_int_like(v)) return Value::integer(v.as_int());
  if (v.is_float()) return v;
  fail("bad operand type for unary +: '{}'", type_name(v));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::undefined: return false;
    case Kind::string:
      if (!item.is_string())
        fail("'in <string>' requires string as left operand, not {}", type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Kind::list:
      for (const Value& v : container.list().items)
        if (py_equal(v, item)) return true;
      return false;
    case Kind::dict:
      if (item.is_list() && !item.is_seq(Seq::tuple)) fail("unhashable type: '{}'", type_name(item));
      if (item.is_dict()) fail("unhashable type: 'dict'");
      return container.dict().find(item) != nullptr;
    default: fail("argument of type '{}' is not iterable", type_name(container));
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return 0;
    case Kind::string: return static_cast<int64_t>(code_point_count(v.str()));
    case Kind::list:
      if (v.list().seq == Seq::generator) break;
      return static_cast<int64_t>(v.list().items.size());
    case Kind::dict: return static_cast<int64_t>(v.dict().entries.size());
    default: break;
  }
  fail("object of type '{}' has no len()", type_name(v));
}

std::vector<Value> iterate(const Value& v) {
  std::vector<Value> out;
  switch (v.kind()) {
    case Kind::undefined: return out;
    case Kind::string:
      for (uint32_t cp : code_points(v.str())) {
        std::string s;
        append_utf8(s, cp);
        out.push_back(Value::string(std::move(s)));
      }
      return out;
    case Kind::list: return v.list().items;
    case Kind::dict:
      for (const auto& e : v.dict().entries) out.push_back(e.first);
      return out;
    default: fail("'{}' object is not iterable", type_name(v));
  }
}

Value to_list(const Value& v) { return Value::list(iterate(v)); }

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_string()) {
    if (is_ascii(obj.str())) {
      std::string out;
      for (size_t i : slice_positions(int64_t(obj.str().size()), start, stop, step)) out += obj.str()[i];
      return Value::string(std::move(out));
    }
    const std::vector<uint32_t> cps = code_points(obj.str());
    std::string out;
    for (size_t i : slice_positions(int64_t(cps.size()), start, stop, step)) append_utf8(out, cps[i]);
    return Value::string(std::move(out));
  }
  if (obj.is_list() && obj.list().seq != Seq::generator && obj.list().seq != Seq::dict_items &&
      obj.list().seq != Seq::dict_keys && obj.list().seq != Seq::dict_values) {
    const auto& items = obj.list().items;
    std::vector<Value> out;
    for (size_t i : slice_positions(int64_t(items.size()), start, stop, step)) out.push_back(items[i]);
    // Slicing a range gives a range in Python; a list prints differently, so refuse to print it.
    const Seq seq = obj.list().seq == Seq::range ? Seq::generator : obj.list().seq;
    return Value::list(std::move(out), seq);
  }
  fail("'{}' object is not subscriptable", type_name(obj));
}

std::string percent_format(const std::string& format, const Value& args) {
  std::vector<Value> values =
      args.is_seq(Seq::tuple) ? args.list().items : std::vector<Value>{args};
  if (args.is_dict()) fail("%-formatting with a mapping is unsupported");
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) fail("incomplete format");
    if (format[i] == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) fail("not enough arguments for format string");
    out += format_one(format[i], values[next++]);
  }
  if (next < values.size()) fail("not all arguments converted during string formatting");
  return out;
}

}  // namespace fp4llm::tmpl
