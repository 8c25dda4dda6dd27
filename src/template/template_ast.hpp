// The parsed form of a template: expressions and statements as jinja2's parser builds them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/template_value.hpp"

namespace fp4llm::tmpl {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  constant,   // value
  name,       // name
  list,       // args
  tuple,      // args
  dict,       // args: key, value, key, value, ...
  getattr,    // args[0].name
  getitem,    // args[0][args[1]]
  slice,      // args: start, stop, step (null when absent); only as a getitem key
  call,       // args[0](args[1:], keywords)
  filter,     // args[0] | name(args[1:], keywords)
  test,       // args[0] is name(args[1:], keywords)
  negate,     // -args[0]
  positive,   // +args[0]
  logical_not,
  logical_and,
  logical_or,
  binary,     // args[0] op args[1], op in name: + - * / // % **
  concat,     // args joined with ~
  compare,    // args[0] ops[0] args[1] ops[1] args[2] ...
  condition,  // args[1] if args[0] else args[2] (args[2] may be null)
};

struct Expr {
  ExprKind kind;
  size_t offset = 0;  // into the normalised source
  std::string name;
  Value value;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  ExprPtr star_args, star_kwargs;  // *args and **kwargs of a call
  std::vector<std::string> ops;    // compare operators: == != < <= > >= in notin
};

enum class StmtKind {
  text,      // text
  output,    // {{ expr }}
  if_,       // branches of (condition, body); else_body
  for_,      // target in iter [if filter]: body else else_body
  set,       // target = expr
  set_block, // {% set target %}body{% endset %}, filtered by expr (a filter chain on null)
  macro,     // name(params = defaults): body
  call_block,
  filter_block,
  with,      // {% with targets = values %}body{% endwith %}
  break_,
  continue_,
  generation,  // transformers' {% generation %}: renders its body
};

struct Stmt {
  StmtKind kind;
  size_t offset = 0;
  std::string text;
  ExprPtr target, expr, filter;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  // macro parameters and defaults (null when none); with-statement targets and values
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;
  std::vector<ExprPtr> targets, values;
};

}  // namespace fp4llm::tmpl
