#include "backend/cuda/step_profiler.hpp"

#include "backend/cuda/cuda_check.hpp"

namespace fp4llm::cuda {

StepProfiler::~StepProfiler() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

cudaEvent_t StepProfiler::event(size_t index) {
  while (events_.size() <= index) {
    cudaEvent_t e = nullptr;
    FP4LLM_CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  return events_[index];
}

void StepProfiler::begin(cudaStream_t stream) {
  if (!enabled_) return;
  stages_.clear();
  FP4LLM_CUDA_CHECK(cudaEventRecord(event(0), stream));
}

void StepProfiler::mark(const char* stage, cudaStream_t stream) {
  if (!enabled_) return;
  stages_.push_back(stage);
  FP4LLM_CUDA_CHECK(cudaEventRecord(event(stages_.size()), stream));
}

void StepProfiler::end_step() {
  if (!enabled_ || stages_.empty()) return;
  FP4LLM_CUDA_CHECK(cudaEventSynchronize(events_[stages_.size()]));
  for (size_t i = 0; i < stages_.size(); ++i) {
    float ms = 0;
    FP4LLM_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
    total_us_[stages_[i]] += double(ms) * 1e3;
  }
  ++steps_;
  stages_.clear();
}

std::map<std::string, double> StepProfiler::take_averages() {
  std::map<std::string, double> avg;
  for (const auto& [stage, us] : total_us_) avg[stage] = steps_ ? us / steps_ : 0.0;
  total_us_.clear();
  steps_ = 0;
  return avg;
}

}  // namespace fp4llm::cuda
