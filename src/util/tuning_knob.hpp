// Kernel tuning knobs read from the environment (FP4LLM_*), so that variants can be compared on a
// GPU without a rebuild; unset, the measured default applies. Callers read each knob once.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace fp4llm {

// The knob's integer value, or `fallback` when it is unset.
inline int64_t knob_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

// True when the knob is set to exactly `value`.
inline bool knob_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}

// False only when the knob is set to "0".
inline bool knob_on(const char* name) {
  const char* v = std::getenv(name);
  return !(v && std::strcmp(v, "0") == 0);
}

}  // namespace fp4llm
