// Runs a parsed template: jinja2's scoping (a for-loop body and a macro get their own scope,
// if-blocks do not), loop controls, and the limits that keep hostile templates bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "template/template_ast.hpp"
#include "template/template_value.hpp"

namespace fp4llm::tmpl {

struct RenderLimits {
  size_t max_output_bytes = size_t{64} << 20;
  uint64_t max_steps = 10'000'000;  // expression and statement evaluations, ~1-3 s
  int max_call_depth = 40;          // nested macro calls
};

class Scope {
 public:
  explicit Scope(const Scope* parent) : parent_(parent) {}
  const Value* find(const std::string& name) const;
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  const Scope* parent_;
  std::unordered_map<std::string, Value> vars_;
};

// Adds range, dict, namespace, raise_exception and strftime_now.
void add_globals(Scope& scope);

// Throws Error naming the line and column of the failing statement or expression.
std::string evaluate(const std::string& source, const Body& body, const Scope& globals,
                     const RenderLimits& limits);

}  // namespace fp4llm::tmpl
