#include "backend/cuda/bench_trace.hpp"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/kernel_trace.hpp"
#include "backend/kernel_timeline.hpp"
#include "util/error.hpp"

namespace fp4llm::cuda {

namespace {

// batch 0: the prefill's kernels.
constexpr const char* kTraceCsvHeader = "batch,launch,kernel,grid_x,grid_y,grid_z,block_x,start_ns,end_ns\n";

// The traced kernels as CSV rows under the header above, times from the earliest start of them
// all (a launch's rows are one step).
void append_trace_csv(const std::vector<TracedKernel>& kernels, int64_t batch, const std::string& path) {
  std::ofstream f(path, std::ios::app);
  if (!f) fail("--trace: cannot write {}", path);
  uint64_t t0 = UINT64_MAX;
  for (const TracedKernel& k : kernels) t0 = std::min(t0, k.start_ns);
  for (const TracedKernel& k : kernels)
    f << fmt::format("{},{},\"{}\",{},{},{},{},{},{}\n", batch, k.launch, k.name, k.grid[0], k.grid[1], k.grid[2], k.block[0],
                     k.start_ns - t0, k.end_ns - t0);
}

// A traced run's kernels reduced to each kernel's share (backend/kernel_timeline.hpp), as JSON.
nlohmann::json timeline_json(const StepTimeline& t) {
  nlohmann::json out = {{"steps", t.steps}, {"span_us", t.span_us}};
  for (const KernelCost& k : t.kernels)
    out["kernels"].push_back({{"name", k.name},
                              {"grid", k.grid},
                              {"block", k.block},
                              {"launches_per_step", k.launches_per_step},
                              {"mean_us", k.mean_us},
                              {"critical_us_per_step", k.critical_us},
                              {"mean_lead_us", k.mean_lead_us}});
  return out;
}

}  // namespace

nlohmann::json trace_run(const std::function<void()>& run, int64_t steps, int64_t batch, const std::string& path) {
  int device = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  discard_traced_kernels();  // what ran before
  run();
  std::vector<TracedKernel> kernels = take_traced_kernels(device);
  if (steps == 0)
    for (TracedKernel& k : kernels) k.launch = 0;
  append_trace_csv(kernels, batch, path);
  const StepTimeline t = reduce_step_timeline(std::move(kernels), steps == 0 ? 1 : 8);
  if (steps > 0 && t.steps != steps)  // the launches did not tell the steps apart
    fail("--trace: {} decode steps ran but {} were told apart in the records", steps, t.steps);
  return timeline_json(t);
}

void start_bench_trace(const std::string& path) {
  start_kernel_trace();  // refuses in a build without CUPTI, before the file is touched
  std::ofstream f(path, std::ios::trunc);
  if (!f || !(f << kTraceCsvHeader)) fail("--trace: cannot write {}", path);
}

}  // namespace fp4llm::cuda
