// Runtime flags to compile-time ones: calls f with one std::bool_constant per flag, so that a
// launcher picks among a kernel's instantiations by its knobs without a ladder of branches.
#pragma once

#include <type_traits>

namespace fp4llm {

template <typename F>
void dispatch_bools(F&& f) {
  f();
}

template <typename F, typename... Rest>
void dispatch_bools(F&& f, bool first, Rest... rest) {
  const auto with = [&](auto flag) { dispatch_bools([&](auto... flags) { f(flag, flags...); }, rest...); };
  if (first) with(std::true_type{});
  else with(std::false_type{});
}

}  // namespace fp4llm
