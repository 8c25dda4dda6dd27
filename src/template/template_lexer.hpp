// Splits template source into tokens exactly as jinja2's lexer does with trim_blocks=True and
// lstrip_blocks=True: newlines normalised, the final newline dropped, `-` / `+` whitespace
// control, comments removed, {% raw %} kept verbatim.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fp4llm::tmpl {

enum class TokenType {
  data,         // literal template text
  var_begin,    // {{
  var_end,      // }}
  block_begin,  // {%
  block_end,    // %}
  name,
  string,       // value: the decoded literal
  integer,
  floating,
  op,           // value: the operator text
  eof,
};

struct Token {
  TokenType type;
  std::string value;
  int64_t int_value = 0;
  double float_value = 0;
  size_t offset = 0;  // into the normalised source, for line and column
};

struct LexedTemplate {
  std::string source;  // normalised (\r\n and \r as \n, final newline removed)
  std::vector<Token> tokens;
};

LexedTemplate lex_template(const std::string& source);

// "line L, column C" of `offset` in normalised source.
std::string describe_position(const std::string& source, size_t offset);
int line_of(const std::string& source, size_t offset);

}  // namespace fp4llm::tmpl
