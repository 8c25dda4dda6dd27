// Where a replayed decode step's time goes, kernel by kernel: the GPU's own start and end times of
// every kernel of a few steps (recorded by `fp4llm bench --trace`, backend/cuda/kernel_trace.hpp)
// reduced to what each kernel adds to the step's critical path. With early launch, kernels
// overlap, so a kernel's duration says little; what it adds is how far its end moves the latest
// end seen so far in the step. Those additions sum to the step's span. Plain C++, so that the
// reduction is tested on any machine.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace fp4llm {

// One kernel as the tracer saw it: times in nanoseconds on the GPU's clock; `launch` tells steps
// apart (the graph launch, or the kernel launch outside graphs, that ran it).
struct TracedKernel {
  std::string name;
  std::array<int32_t, 3> grid{}, block{};
  uint64_t start_ns = 0, end_ns = 0;
  uint32_t launch = 0;
};

// The kernels of one signature (name and grid) over the traced steps.
struct KernelCost {
  std::string name;
  std::array<int32_t, 3> grid{}, block{};
  double launches_per_step = 0;  // e.g. once per layer
  double mean_us = 0;            // start to end of one launch
  double critical_us = 0;        // per step: what its launches add to the step's span
  double mean_lead_us = 0;       // start minus the end of the kernel started before it (< 0: overlapped)
};

struct StepTimeline {
  int64_t steps = 0;      // steps reduced (launches with at least `min_kernels` kernels)
  double span_us = 0;     // mean first start to last end of a step
  std::vector<KernelCost> kernels;  // by critical_us, largest first
};

// Groups `kernels` by launch, keeps the launches of at least `min_kernels` kernels (a decode
// step's graph, not the sampling around it), and reduces them. Throws Error when none is left.
StepTimeline reduce_step_timeline(std::vector<TracedKernel> kernels, int64_t min_kernels = 8);

// "ns::f<T>(args)" -> "f<T>": the kernel's own name from a demangled signature, for tables.
std::string short_kernel_name(const std::string& demangled);

}  // namespace fp4llm
