#include "util/progress_bar.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace fp4llm {

namespace {
std::string human(double v, const std::string& unit) {
  if (unit != "B") return fmt::format("{:.0f}", v);
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int i = 0;
  while (v >= 1000.0 && i < 4) v /= 1000.0, ++i;
  return fmt::format("{:.1f} {}", v, units[i]);
}
}  // namespace

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  enabled_ = isatty(STDERR_FILENO) || std::getenv("FP4LLM_PROGRESS") != nullptr;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(uint64_t amount) {
  done_ += amount;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(100)) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const double frac = total_ ? double(done_) / double(total_) : 1.0;
  const int filled = static_cast<int>(frac * kWidth);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  fmt::print(stderr, "\r{} [{}] {:3.0f}% {} / {} {:.1f}s{}", label_, bar, frac * 100.0,
             human(double(done_), unit_), human(double(total_), unit_), secs,
             final_line ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace fp4llm
