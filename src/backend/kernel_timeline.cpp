#include "backend/kernel_timeline.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include "util/error.hpp"

namespace fp4llm {

namespace {

void erase_all(std::string& s, const std::string& what) {
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at)) s.erase(at, what.size());
}

using Signature = std::tuple<std::string, std::array<int32_t, 3>, std::array<int32_t, 3>>;

struct Totals {
  int64_t launches = 0;
  double duration_ns = 0, critical_ns = 0, lead_ns = 0;
};

// One step's kernels in start order into the totals: each adds how far its end moves the latest
// end so far (the first kernel: its whole duration). Kernels that start together are taken in
// order of their ends and names, so that the attribution does not depend on the records' order.
void add_step(std::vector<TracedKernel>& step, std::map<Signature, Totals>& totals) {
  std::ranges::sort(step, [](const TracedKernel& a, const TracedKernel& b) {
    return std::tie(a.start_ns, a.end_ns, a.name) < std::tie(b.start_ns, b.end_ns, b.name);
  });
  uint64_t frontier = step.front().start_ns, previous_end = step.front().start_ns;
  for (const TracedKernel& k : step) {
    Totals& t = totals[{k.name, k.grid, k.block}];
    ++t.launches;
    t.duration_ns += double(k.end_ns - k.start_ns);
    t.critical_ns += k.end_ns > frontier ? double(k.end_ns - frontier) : 0.0;
    t.lead_ns += double(int64_t(k.start_ns) - int64_t(previous_end));
    frontier = std::max(frontier, k.end_ns);
    previous_end = k.end_ns;
  }
}

}  // namespace

StepTimeline reduce_step_timeline(std::vector<TracedKernel> kernels, int64_t min_kernels) {
  for (const TracedKernel& k : kernels)
    if (k.end_ns < k.start_ns) fail("kernel trace: {} ends before it starts", k.name);
  std::map<uint32_t, std::vector<TracedKernel>> by_launch;
  for (TracedKernel& k : kernels) by_launch[k.launch].push_back(std::move(k));
  StepTimeline out;
  std::map<Signature, Totals> totals;
  double span_ns = 0;
  for (auto& [launch, step] : by_launch) {
    if (int64_t(step.size()) < min_kernels) continue;
    add_step(step, totals);  // sorts the step by start
    const uint64_t end = std::ranges::max(step, {}, &TracedKernel::end_ns).end_ns;
    span_ns += double(end - step.front().start_ns);
    ++out.steps;
  }
  if (out.steps == 0) fail("kernel trace: no launch of at least {} kernels was recorded", min_kernels);
  const double steps = double(out.steps);
  out.span_us = span_ns / steps / 1e3;
  for (const auto& [signature, t] : totals) {
    const auto& [name, grid, block] = signature;
    out.kernels.push_back({name, grid, block, double(t.launches) / steps, t.duration_ns / double(t.launches) / 1e3,
                           t.critical_ns / steps / 1e3, t.lead_ns / double(t.launches) / 1e3});
  }
  std::ranges::sort(out.kernels, [](const KernelCost& a, const KernelCost& b) {
    return a.critical_us != b.critical_us ? a.critical_us > b.critical_us : std::tie(a.name, a.grid) < std::tie(b.name, b.grid);
  });
  return out;
}

std::string short_kernel_name(const std::string& demangled) {
  std::string s = demangled;
  erase_all(s, "(anonymous namespace)::");
  if (s.starts_with("void ")) s.erase(0, 5);
  int depth = 0;
  size_t name_start = 0, cut = s.size();
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '<') ++depth;
    else if (c == '>') --depth;
    else if (depth == 0 && c == '(') {
      cut = i;
      break;
    } else if (depth == 0 && c == ':' && i + 1 < s.size() && s[i + 1] == ':') {
      name_start = i + 2;
    }
  }
  return s.substr(name_start, cut - name_start);
}

}  // namespace fp4llm
