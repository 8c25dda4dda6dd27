#include "template/template_lexer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>

#include "template/template_methods.hpp"
#include "template/template_unicode.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  // jinja2 (keep_trailing_newline=False) drops one final newline.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool all_space(std::string_view text) {
  if (text.empty()) return false;
  for (size_t pos = 0; pos < text.size();)
    if (!py_isspace(next_code_point(text, pos))) return false;
  return true;
}

std::string rstrip(const std::string& text) {
  return py_strip(text, Value::none(), false, true);
}

// The text before a tag loses trailing whitespace for a `-` sign, or with lstrip_blocks the
// blanks between the last newline and a block/comment tag.
std::string strip_before_tag(std::string text, char sign, bool lstrip, bool line_starting) {
  if (sign == '-') return rstrip(text);
  if (sign == '+' || !lstrip) return text;
  const size_t nl = text.rfind('\n');
  const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
  if ((l_pos > 0 || line_starting) && all_space(std::string_view(text).substr(l_pos)))
    text.resize(l_pos);
  return text;
}

uint32_t hex_value(std::string_view digits, size_t count, const char* what) {
  if (digits.size() < count) fail("string literal: truncated {} escape", what);
  uint32_t v = 0;
  for (size_t i = 0; i < count; ++i) {
    const char c = digits[i];
    int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) fail("string literal: truncated {} escape", what);
    v = v * 16 + uint32_t(d);
  }
  return v;
}

void append_checked(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF) fail("string literal: illegal Unicode character");
  if (cp >= 0xD800 && cp <= 0xDFFF) fail("string literal: lone surrogate escapes are unsupported");
  append_utf8(out, cp);
}

// The escape after a backslash, as Python's "unicode-escape" codec reads it. A non-ASCII
// character after a backslash reaches that codec as its own \x / \u escape text (jinja2 first
// encodes with "backslashreplace"), so it comes out as that text.
size_t decode_escape(std::string_view s, size_t i, std::string& out) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c >= 0x80) {
    size_t pos = i;
    const uint32_t cp = next_code_point(s, pos);
    out += cp <= 0xFF ? fmt::format("\\x{:02x}", cp)
           : cp <= 0xFFFF ? fmt::format("\\u{:04x}", cp) : fmt::format("\\U{:08x}", cp);
    return pos;
  }
  switch (c) {
    case '\n': return i + 1;
    case '\\': out += '\\'; return i + 1;
    case '\'': out += '\''; return i + 1;
    case '"': out += '"'; return i + 1;
    case 'a': out += '\a'; return i + 1;
    case 'b': out += '\b'; return i + 1;
    case 'f': out += '\f'; return i + 1;
    case 'n': out += '\n'; return i + 1;
    case 'r': out += '\r'; return i + 1;
    case 't': out += '\t'; return i + 1;
    case 'v': out += '\v'; return i + 1;
    case 'x': append_checked(out, hex_value(s.substr(i + 1), 2, "\\xXX")); return i + 3;
    case 'u': append_checked(out, hex_value(s.substr(i + 1), 4, "\\uXXXX")); return i + 5;
    case 'U': append_checked(out, hex_value(s.substr(i + 1), 8, "\\UXXXXXXXX")); return i + 9;
    case 'N': fail("string literal: \\N{{...}} escapes are unsupported");
    default: break;
  }
  if (c >= '0' && c <= '7') {
    uint32_t v = 0;
    size_t j = i;
    while (j < s.size() && j < i + 3 && s[j] >= '0' && s[j] <= '7') v = v * 8 + uint32_t(s[j++] - '0');
    append_checked(out, v);
    return j;
  }
  out += '\\';
  out += static_cast<char>(c);
  return i + 1;
}

std::string decode_string_literal(std::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size();) {
    if (body[i] != '\\') {
      out += body[i++];
      continue;
    }
    i = decode_escape(body, i + 1, out);
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) lex_root();
    push(TokenType::eof, "", src_.size());
    return std::move(tokens_);
  }

  const std::string& source() const { return src_; }

 private:
  [[noreturn]] void error(size_t offset, const std::string& message) const {
    fail("template syntax error at {}: {}", describe_position(src_, offset), message);
  }

  void push(TokenType type, std::string value, size_t offset) {
    tokens_.push_back(Token{type, std::move(value), 0, 0, offset});
  }

  bool at(size_t p, std::string_view s) const { return src_.compare(p, s.size(), s) == 0; }

  size_t skip_space(size_t p) const {
    while (p < src_.size()) {
      size_t q = p;
      if (!py_isspace(next_code_point(src_, q))) break;
      p = q;
    }
    return p;
  }

  size_t find_tag_start(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1))
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#'))
        return p;
    return std::string::npos;
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})`: returns the end of the match or npos.
  size_t match_raw_begin(size_t p) const {
    size_t q = p + 2;
    if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
    q = skip_space(q);
    if (!at(q, "raw")) return std::string::npos;
    q = skip_space(q + 3);
    if (at(q, "-%}")) return skip_space(q + 3);
    if (at(q, "%}")) return q + 2;
    return std::string::npos;
  }

  void lex_root() {
    const size_t tag = find_tag_start(pos_);
    if (tag == std::string::npos) {
      push(TokenType::data, src_.substr(pos_), pos_);
      pos_ = src_.size();
      return;
    }
    const char kind = src_[tag + 1];
    const size_t raw_end = kind == '%' ? match_raw_begin(tag) : std::string::npos;
    char sign = 0;
    if (tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) sign = src_[tag + 2];
    const std::string text =
        strip_before_tag(src_.substr(pos_, tag - pos_), sign, kind != '{', line_starting_);
    if (!text.empty()) push(TokenType::data, text, pos_);
    line_starting_ = false;
    if (raw_end != std::string::npos) return lex_raw(raw_end);
    pos_ = tag + 2 + (sign ? 1 : 0);
    if (kind == '#') return lex_comment(tag);
    lex_tag(kind == '%', tag);
  }

  // Ends a block or comment tag: `+%}` keeps what follows, `-%}` eats all whitespace after,
  // a plain `%}` eats one newline (trim_blocks).
  size_t match_tag_end(size_t p, char close) const {
    const char end[3] = {close, '}', 0};
    if (src_[p] == '+' && at(p + 1, end)) return p + 3;
    if (src_[p] == '-' && at(p + 1, end)) return skip_space(p + 3);
    if (at(p, end)) return (p + 2 < src_.size() && src_[p + 2] == '\n') ? p + 3 : p + 2;
    return std::string::npos;
  }

  void finish_tag(size_t end) {
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  // jinja2 reports an unclosed comment or raw block only when some text follows its opening.
  void lex_comment(size_t start) {
    if (pos_ >= src_.size()) return;
    for (size_t p = pos_; p < src_.size(); ++p) {
      const size_t end = match_tag_end(p, '#');
      if (end != std::string::npos) return finish_tag(end);
    }
    error(start, "Missing end of comment tag");
  }

  void lex_raw(size_t body_start) {
    if (body_start >= src_.size()) {
      pos_ = src_.size();
      return;
    }
    for (size_t p = src_.find("{%", body_start); p != std::string::npos; p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_space(q);
      if (!at(q, "endraw")) continue;
      q = skip_space(q + 6);
      const size_t end = match_tag_end(q, '%');
      if (end == std::string::npos) continue;
      const bool line_starting = body_start > 0 && src_[body_start - 1] == '\n';
      const std::string text = strip_before_tag(src_.substr(body_start, p - body_start), sign, true,
                                                line_starting);
      if (!text.empty()) push(TokenType::data, text, body_start);
      return finish_tag(end);
    }
    error(body_start, "Missing end of raw directive");
  }

  void lex_tag(bool block, size_t start) {
    push(block ? TokenType::block_begin : TokenType::var_begin, "", start);
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src_.size())
        error(start, fmt::format("unexpected end of template, the tag opened here never closes"));
      if (balance.empty()) {
        size_t end = std::string::npos;
        if (block) {
          end = match_tag_end(pos_, '%');
        } else if (at(pos_, "-}}")) {
          end = skip_space(pos_ + 3);
        } else if (at(pos_, "}}")) {
          end = pos_ + 2;
        }
        if (end != std::string::npos) {
          push(block ? TokenType::block_end : TokenType::var_end, "", pos_);
          return finish_tag(end);
        }
      }
      const size_t after_space = skip_space(pos_);
      if (after_space != pos_) {
        pos_ = after_space;
        continue;
      }
      lex_expression_token(balance);
    }
  }

  // `(\d+_)*\d+`: returns the end of the digits or npos.
  size_t match_digits(size_t p) const {
    if (p >= src_.size() || !is_digit(src_[p])) return std::string::npos;
    while (true) {
      while (p < src_.size() && is_digit(src_[p])) ++p;
      if (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1]))
        ++p;
      else
        return p;
    }
  }

  size_t match_float(size_t p) const {
    if (p > 0 && src_[p - 1] == '.') return std::string::npos;
    const size_t int_end = match_digits(p);
    if (int_end == std::string::npos) return std::string::npos;
    size_t frac_end = std::string::npos;
    if (int_end < src_.size() && src_[int_end] == '.') frac_end = match_digits(int_end + 1);
    const size_t mantissa_end = frac_end != std::string::npos ? frac_end : int_end;
    if (mantissa_end < src_.size() && (src_[mantissa_end] == 'e' || src_[mantissa_end] == 'E')) {
      size_t q = mantissa_end + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      const size_t exp_end = match_digits(q);
      if (exp_end != std::string::npos) return exp_end;
    }
    return frac_end;
  }

  size_t match_integer(size_t p) const {
    auto run = [&](size_t q, auto digit_ok) {
      size_t end = std::string::npos;
      while (true) {
        size_t r = q;
        if (r < src_.size() && src_[r] == '_') ++r;
        if (r < src_.size() && digit_ok(src_[r])) {
          q = r + 1;
          end = q;
        } else {
          return end;
        }
      }
    };
    if (src_[p] == '0' && p + 1 < src_.size()) {
      const char b = static_cast<char>(src_[p + 1] | 0x20);
      size_t end = std::string::npos;
      if (b == 'b') end = run(p + 2, [](char c) { return c == '0' || c == '1'; });
      if (b == 'o') end = run(p + 2, [](char c) { return c >= '0' && c <= '7'; });
      if (b == 'x') end = run(p + 2, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
      if (end != std::string::npos) return end;
    }
    if (src_[p] >= '1' && src_[p] <= '9') {
      const size_t end = run(p + 1, is_digit);
      return end == std::string::npos ? p + 1 : end;
    }
    if (src_[p] == '0') {
      const size_t end = run(p + 1, [](char c) { return c == '0'; });
      return end == std::string::npos ? p + 1 : end;
    }
    return std::string::npos;
  }

  void push_integer(size_t end) {
    std::string text;
    for (size_t i = pos_; i < end; ++i)
      if (src_[i] != '_') text += src_[i];
    int base = 10;
    size_t skip = 0;
    if (text.size() > 1 && text[0] == '0') {
      const char b = static_cast<char>(text[1] | 0x20);
      base = b == 'b' ? 2 : b == 'o' ? 8 : b == 'x' ? 16 : 10;
      skip = base == 10 ? 0 : 2;
    }
    errno = 0;
    const unsigned long long v = std::strtoull(text.c_str() + skip, nullptr, base);
    if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX))
      error(pos_, "integer literal too large (Python big integers are unsupported)");
    push(TokenType::integer, text, pos_);
    tokens_.back().int_value = static_cast<int64_t>(v);
    pos_ = end;
  }

  void push_float(size_t end) {
    std::string text;
    for (size_t i = pos_; i < end; ++i)
      if (src_[i] != '_') text += src_[i];
    push(TokenType::floating, text, pos_);
    tokens_.back().float_value = std::strtod(text.c_str(), nullptr);
    pos_ = end;
  }

  bool lex_string() {
    const char quote = src_[pos_];
    for (size_t p = pos_ + 1; p < src_.size(); ++p) {
      if (src_[p] == '\\') {
        ++p;
        continue;
      }
      if (src_[p] == quote) {
        try {
          push(TokenType::string, decode_string_literal(std::string_view(src_).substr(pos_ + 1, p - pos_ - 1)), pos_);
        } catch (const Error& e) {
          error(pos_, e.what());
        }
        pos_ = p + 1;
        return true;
      }
    }
    return false;
  }

  void lex_operator(std::vector<char>& balance) {
    static constexpr std::array<std::string_view, 6> two = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : two) {
      if (at(pos_, op)) {
        push(TokenType::op, std::string(op), pos_);
        pos_ += 2;
        return;
      }
    }
    const char c = src_[pos_];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      size_t q = pos_;
      const uint32_t cp = next_code_point(src_, q);
      std::string ch;
      append_utf8(ch, cp);
      error(pos_, fmt::format("unexpected char '{}'", ch));
    }
    if (c == '(' || c == '[' || c == '{') balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) error(pos_, fmt::format("unexpected '{}'", c));
      const char expected = balance.back();
      balance.pop_back();
      if (expected != c) error(pos_, fmt::format("unexpected '{}', expected '{}'", c, expected));
    }
    push(TokenType::op, std::string(1, c), pos_);
    ++pos_;
  }

  void lex_expression_token(std::vector<char>& balance) {
    if (const size_t end = match_float(pos_); end != std::string::npos) return push_float(end);
    if (const size_t end = match_integer(pos_); end != std::string::npos) return push_integer(end);
    if (is_name_start(src_[pos_])) {
      size_t end = pos_;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      push(TokenType::name, src_.substr(pos_, end - pos_), pos_);
      pos_ = end;
      return;
    }
    if ((src_[pos_] == '\'' || src_[pos_] == '"') && lex_string()) return;
    lex_operator(balance);
  }

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

LexedTemplate lex_template(const std::string& source) {
  check_utf8(source, "template source");
  Lexer lexer(normalize_newlines(source));
  LexedTemplate out;
  out.tokens = lexer.run();
  out.source = lexer.source();
  return out;
}

int line_of(const std::string& source, size_t offset) {
  offset = std::min(offset, source.size());
  return 1 + static_cast<int>(std::count(source.begin(), source.begin() + offset, '\n'));
}

std::string describe_position(const std::string& source, size_t offset) {
  offset = std::min(offset, source.size());
  const size_t line_start = source.rfind('\n', offset == 0 ? 0 : offset - 1);
  const size_t col_start = (line_start == std::string::npos || offset == 0) ? 0 : line_start + 1;
  const size_t column = code_point_count(std::string_view(source).substr(col_start, offset - col_start)) + 1;
  return fmt::format("line {}, column {}", line_of(source, offset), column);
}

}  // namespace fp4llm::tmpl
