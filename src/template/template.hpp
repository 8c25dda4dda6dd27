// A compiled Jinja template (the subset chat templates use), rendered the way transformers
// renders chat templates: jinja2's ImmutableSandboxedEnvironment with trim_blocks,
// lstrip_blocks and loop controls, transformers' tojson, raise_exception and strftime_now.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "template/template_evaluator.hpp"
#include "template/template_value.hpp"

namespace fp4llm::tmpl {

class Template {
 public:
  // Throws Error with line and column for syntax errors and unsupported tags.
  static Template parse(const std::string& source);

  // `variables` in order; later ones win. Throws Error for runtime errors, with the message
  // of raise_exception(...) when the template raises.
  std::string render(const std::vector<std::pair<std::string, Value>>& variables,
                     const RenderLimits& limits = {}) const;
  // Every member of a JSON object becomes a variable.
  std::string render_json(const nlohmann::ordered_json& variables,
                          const RenderLimits& limits = {}) const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace fp4llm::tmpl
