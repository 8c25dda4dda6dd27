// FP4LLM_PREFETCH_WEIGHTS (decode steps): while a kernel that reads little from memory runs (the
// attention), a one-block kernel on a side stream asks L2 for the weights of a product still to
// come, so that the product finds them there instead of waiting on DRAM. A batch-1 product of a
// few MB is bound by its load latency chain, not by bandwidth (docs/PERFORMANCE.md), and L2 (50 MB
// on the H100 and H200) holds such a matrix while the attention runs. The prefetch kernel only
// issues requests; the side stream joins the step's stream once, at the step's end, so nothing
// waits for it and a captured graph stays joined.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

namespace fp4llm::cuda {

struct ByteRange {
  const void* data = nullptr;
  uint64_t bytes = 0;
};

// What the knob asks for: nothing; the o_proj (and an MoE layer's router) during the attention;
// also, in MoE layers, the next layer's qkv during the experts.
enum class PrefetchPlan { None, DuringAttention, AlsoAcrossExperts };
PrefetchPlan prefetch_plan();

class WeightPrefetch {
 public:
  static constexpr int kMaxRanges = 4;

  WeightPrefetch();
  ~WeightPrefetch();
  WeightPrefetch(const WeightPrefetch&) = delete;
  WeightPrefetch& operator=(const WeightPrefetch&) = delete;

  // After the work issued so far on `stream`, L2 is asked for `ranges` (at most kMaxRanges; empty
  // ones skipped) on the side stream.
  void after(cudaStream_t stream, std::initializer_list<ByteRange> ranges);
  // `stream` waits for the side stream's requests to have been issued (nothing when none were).
  void join(cudaStream_t stream);

 private:
  cudaStream_t side_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  bool pending_ = false;
};

}  // namespace fp4llm::cuda
