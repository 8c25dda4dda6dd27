#include "template/template.hpp"

#include "template/template_lexer.hpp"
#include "template/template_parser.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

struct Template::Compiled {
  std::string source;
  Body body;
};

Template Template::parse(const std::string& source) {
  LexedTemplate lexed = lex_template(source);
  auto compiled = std::make_shared<Compiled>();
  compiled->body = parse_template(lexed);
  compiled->source = std::move(lexed.source);
  Template t;
  t.compiled_ = std::move(compiled);
  return t;
}

std::string Template::render(const std::vector<std::pair<std::string, Value>>& variables,
                             const RenderLimits& limits) const {
  Scope globals(nullptr);
  add_globals(globals);
  Scope context(&globals);
  for (const auto& [name, value] : variables) context.set(name, value);
  return evaluate(compiled_->source, compiled_->body, context, limits);
}

std::string Template::render_json(const nlohmann::ordered_json& variables,
                                  const RenderLimits& limits) const {
  if (!variables.is_object()) fail("template variables must be a JSON object");
  std::vector<std::pair<std::string, Value>> vars;
  for (const auto& [name, value] : variables.items()) vars.emplace_back(name, Value::from_json(value));
  return render(vars, limits);
}

}  // namespace fp4llm::tmpl
