// Every kernel's start and end on the GPU's clock, through CUPTI's activity records (the CUDA
// toolkit's tracing library), for `fp4llm bench --trace`: the kernels of replayed CUDA graphs
// included, with early launch left as it is. Nsight Systems does not run on the lent machines
// (docs/PERFORMANCE.md), and per-stage events around eager launches overstate short kernels.
// Builds without CUPTI keep the interface and refuse with a message.
#pragma once

#include <vector>

#include "backend/kernel_timeline.hpp"

namespace fp4llm::cuda {

// True when this build can trace (CUPTI was found at configure time).
bool kernel_trace_built();

// Starts recording kernels for the rest of the process. Call it before the CUDA graphs to be
// traced are captured; recording costs a little time on every kernel from then on.
void start_kernel_trace();

// Waits for the GPU, then drops what was recorded so far.
void discard_traced_kernels();

// Waits for the GPU and returns the kernels that ran on `device` since the last call of either
// (or since start_kernel_trace), with their demangled short names; throws Error where CUPTI
// lost records or their times.
std::vector<TracedKernel> take_traced_kernels(int device);

}  // namespace fp4llm::cuda
