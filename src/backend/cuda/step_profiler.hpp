// Per-stage GPU time of forward steps (`fp4llm bench --profile`): CUDA events recorded between
// the stages of an eagerly launched step, summed by stage name. Costs nothing when disabled.
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <string>
#include <vector>

namespace fp4llm::cuda {

class StepProfiler {
 public:
  ~StepProfiler();
  bool enabled() const { return enabled_; }
  void enable() { enabled_ = true; }
  void disable() { enabled_ = false; }
  void begin(cudaStream_t stream);                     // start of a step
  void mark(const char* stage, cudaStream_t stream);   // end of `stage`
  void end_step();                                     // waits for the step, adds its times
  // Microseconds per step by stage, averaged over the steps recorded; clears the totals.
  std::map<std::string, double> take_averages();

 private:
  cudaEvent_t event(size_t index);
  bool enabled_ = false;
  std::vector<cudaEvent_t> events_;
  std::vector<const char*> stages_;  // stages_[i] ends at events_[i + 1]
  std::map<std::string, double> total_us_;
  int steps_ = 0;
};

}  // namespace fp4llm::cuda
