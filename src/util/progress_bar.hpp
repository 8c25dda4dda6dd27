// A one-line progress bar on stderr for long loads and conversions. Silent when stderr is not a
// terminal unless forced, so logs and tests stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace fp4llm {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, std::string unit = "B");
  ~ProgressBar();
  void advance(uint64_t amount);
  void finish();
  void disable() { enabled_ = false; }

 private:
  void draw(bool final_line);
  std::string label_, unit_;
  uint64_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace fp4llm
