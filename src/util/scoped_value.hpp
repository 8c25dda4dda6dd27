// A variable given a value for the lifetime of a scope, what it held before restored at the end
// (the CUDA backend's thread-local launch policies around the parts of a step).
#pragma once

#include <utility>

namespace fp4llm {

template <class T>
class ScopedValue {
 public:
  ScopedValue(T& slot, T value) : slot_(slot), before_(std::exchange(slot, std::move(value))) {}
  ~ScopedValue() { slot_ = std::move(before_); }
  ScopedValue(const ScopedValue&) = delete;
  ScopedValue& operator=(const ScopedValue&) = delete;

 private:
  T& slot_;
  T before_;
};

}  // namespace fp4llm
