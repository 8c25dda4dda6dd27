#include "template/template_loop.hpp"

#include <fmt/format.h>

#include "util/error.hpp"

namespace fp4llm::tmpl {

std::optional<Value> LoopObject::get_attr(const std::string& name) const {
  const auto i = static_cast<int64_t>(index0_);
  if (name == "index0") return Value::integer(i);
  if (name == "index") return Value::integer(i + 1);
  if (name == "revindex") return Value::integer(length() - i);
  if (name == "revindex0") return Value::integer(length() - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i + 1 == length());
  if (name == "length") return Value::integer(length());
  if (name == "depth") return Value::integer(depth0_ + 1);
  if (name == "depth0") return Value::integer(depth0_);
  if (name == "previtem")
    return i > 0 ? (*items_)[index0_ - 1] : Value::undefined("there is no previous item");
  if (name == "nextitem")
    return i + 1 < length() ? (*items_)[index0_ + 1] : Value::undefined("there is no next item");
  if (name == "cycle") {
    const size_t index = index0_;
    return make_function("cycle", [index](const CallArgs& args) {
      if (!args.keyword.empty()) fail("loop.cycle() takes no keyword arguments");
      if (args.positional.empty()) fail("no items for cycling given");
      return args.positional[index % args.positional.size()];
    });
  }
  if (name == "changed") {
    return make_function("changed", [](const CallArgs&) -> Value {
      fail("loop.changed() is not supported by this template engine");
    });
  }
  return std::nullopt;
}

std::string LoopObject::repr() const {
  return fmt::format("<LoopContext {}/{}>", index0_ + 1, length());
}

}  // namespace fp4llm::tmpl
