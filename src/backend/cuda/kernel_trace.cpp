#include "backend/cuda/kernel_trace.hpp"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.hpp"
#include "util/error.hpp"

#ifdef FP4LLM_WITH_CUPTI
#include <cupti.h>
#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#endif

namespace fp4llm::cuda {

#ifndef FP4LLM_WITH_CUPTI

bool kernel_trace_built() { return false; }

void start_kernel_trace() {
  fail("--trace: this build has no CUPTI (the CUDA toolkit's libcupti was not found when it was configured)");
}

void discard_traced_kernels() {}

std::vector<TracedKernel> take_traced_kernels(int) { return {}; }

#else

namespace {

constexpr size_t kBufferBytes = size_t(8) << 20;

struct Sink {
  std::mutex mutex;
  std::vector<std::pair<int, TracedKernel>> kernels;  // (device, kernel)
  size_t untimed = 0, dropped = 0;  // records without times; records CUPTI could not keep
};
Sink& sink() {
  static Sink s;
  return s;
}

void check_cupti(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* text = nullptr;
  cuptiGetResultString(r, &text);
  fail("CUPTI: {} failed: {}", what, text ? text : "unknown error");
}

std::string demangled(const char* name) {
  if (!name) return "?";
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> plain(abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return short_kernel_name(status == 0 && plain ? plain.get() : name);
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

// CUPTI hands full buffers back on its own thread. A record whose start and end are both 0 has
// no times (CUPTI could not collect them): counted, not kept.
void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  std::vector<std::pair<int, TracedKernel>> found;
  size_t untimed = 0, dropped = 0;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    if (k->start == 0 || k->end == 0) {
      ++untimed;
      continue;
    }
    found.push_back({int(k->deviceId),
                     {demangled(k->name), {k->gridX, k->gridY, k->gridZ}, {k->blockX, k->blockY, k->blockZ}, k->start, k->end,
                      k->correlationId}});
  }
  std::free(buffer);
  cuptiActivityGetNumDroppedRecords(context, stream, &dropped);
  const std::lock_guard lock(sink().mutex);
  for (auto& f : found) sink().kernels.push_back(std::move(f));
  sink().untimed += untimed;
  sink().dropped += dropped;
}

}  // namespace

bool kernel_trace_built() { return true; }

void start_kernel_trace() {
  static std::once_flag once;
  std::call_once(once, [] {
    sink();  // built before CUPTI can call back, so that it outlives the callbacks at exit
    check_cupti(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "registering the record buffers");
    // Concurrent-kernel records leave kernels free to overlap (the plain kernel kind serialises them).
    check_cupti(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enabling kernel records");
  });
}

void discard_traced_kernels() {
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  check_cupti(cuptiActivityFlushAll(0), "flushing the records");
  const std::lock_guard lock(sink().mutex);
  sink().kernels.clear();
  sink().untimed = sink().dropped = 0;
}

std::vector<TracedKernel> take_traced_kernels(int device) {
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());  // every kernel done: a plain flush returns complete records
  check_cupti(cuptiActivityFlushAll(0), "flushing the records");
  std::vector<std::pair<int, TracedKernel>> all;
  size_t untimed = 0, dropped = 0;
  {
    const std::lock_guard lock(sink().mutex);
    all.swap(sink().kernels);
    std::swap(untimed, sink().untimed);
    std::swap(dropped, sink().dropped);
  }
  if (untimed > 0 || dropped > 0)
    fail("kernel trace: CUPTI gave {} kernel records without times and dropped {}: the trace is incomplete", untimed,
         dropped);
  std::vector<TracedKernel> out;
  for (auto& [d, k] : all)
    if (d == device) out.push_back(std::move(k));
  return out;
}

#endif

}  // namespace fp4llm::cuda
