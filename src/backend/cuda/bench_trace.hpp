// `fp4llm bench --trace`: the kernels of a bench's runs recorded through CUPTI (kernel_trace.hpp),
// appended to a CSV file and reduced to each kernel's share of a step (backend/kernel_timeline.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace fp4llm::cuda {

// Starts recording for the rest of the process and writes the CSV's header to `path`. Call it
// before the CUDA graphs to be traced are captured; throws Error in a build without CUPTI.
void start_bench_trace(const std::string& path);

// The kernels `run` launches on this thread's GPU (rank 0's under tensor parallelism), appended
// to the CSV at `path` under `batch` (0: a prefill), reduced as JSON: steps, span_us and the
// kernels by their share. steps > 0: that many decode steps, told apart by the graph launch that
// ran each (Error if the records tell a different number apart); 0: the whole run as one span
// (prefill launches kernel by kernel).
nlohmann::json trace_run(const std::function<void()>& run, int64_t steps, int64_t batch, const std::string& path);

}  // namespace fp4llm::cuda
