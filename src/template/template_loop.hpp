// The `loop` variable inside {% for %}: loop.index, loop.first, loop.cycle(...), ...
#pragma once

#include <memory>
#include <vector>

#include "template/template_value.hpp"

namespace fp4llm::tmpl {

class LoopObject : public Object {
 public:
  LoopObject(std::shared_ptr<const std::vector<Value>> items, int depth0)
      : items_(std::move(items)), depth0_(depth0) {}
  void set_index(size_t index0) { index0_ = index0; }

  std::string type_name() const override { return "LoopContext"; }
  std::optional<Value> get_attr(const std::string& name) const override;
  std::string repr() const override;

 private:
  int64_t length() const { return static_cast<int64_t>(items_->size()); }

  std::shared_ptr<const std::vector<Value>> items_;
  size_t index0_ = 0;
  int depth0_ = 0;
};

}  // namespace fp4llm::tmpl
