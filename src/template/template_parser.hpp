// Builds the AST from tokens with jinja2's grammar (operator precedence, filters binding tighter
// than binary operators, tests with one bare argument, tuples without parentheses, ...).
#pragma once

#include "template/template_ast.hpp"
#include "template/template_lexer.hpp"

namespace fp4llm::tmpl {

// Nesting deeper than this (brackets, operators, blocks) is refused with a clear error rather
// than risking the stack.
inline constexpr int kMaxNestingDepth = 100;

Body parse_template(const LexedTemplate& lexed);

}  // namespace fp4llm::tmpl
