#include "backend/cuda/weight_prefetch.hpp"


#include "backend/cuda/cuda_check.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

struct PrefetchList {
  const char* data[WeightPrefetch::kMaxRanges];
  uint64_t bytes[WeightPrefetch::kMaxRanges];
  int count;
};

// Pieces of 64 KB, one bulk request each (sm_90), spread over the block's threads; before sm_90,
// one request per 128-byte line. Sizes are rounded down to 16 bytes (a hint may miss a tail; it
// must not touch memory past the range).
constexpr uint64_t kPiece = uint64_t(64) << 10;

__global__ void l2_prefetch_kernel(PrefetchList list) {
  for (int r = 0; r < list.count; ++r) {
    const uint64_t bytes = list.bytes[r] & ~uint64_t(15);
    for (uint64_t at = uint64_t(threadIdx.x) * kPiece; at < bytes; at += uint64_t(blockDim.x) * kPiece) {
      const uint64_t n = bytes - at < kPiece ? bytes - at : kPiece;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(__cvta_generic_to_global(list.data[r] + at)),
                   "r"(uint32_t(n))
                   : "memory");
#else
      for (uint64_t line = 0; line < n; line += 128) asm volatile("prefetch.global.L2 [%0];" ::"l"(list.data[r] + at + line));
#endif
    }
  }
}

}  // namespace

PrefetchPlan prefetch_plan() {
  static const PrefetchPlan plan = knob_is("FP4LLM_PREFETCH_WEIGHTS", "1")       ? PrefetchPlan::DuringAttention
                                   : knob_is("FP4LLM_PREFETCH_WEIGHTS", "2")     ? PrefetchPlan::AlsoAcrossExperts
                                                                                 : PrefetchPlan::None;
  return plan;
}

WeightPrefetch::WeightPrefetch() {
  FP4LLM_CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
  FP4LLM_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
  FP4LLM_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
}

WeightPrefetch::~WeightPrefetch() {
  cudaEventDestroy(join_);
  cudaEventDestroy(fork_);
  cudaStreamDestroy(side_);
}

void WeightPrefetch::after(cudaStream_t stream, std::initializer_list<ByteRange> ranges) {
  if (ranges.size() > size_t(kMaxRanges)) throw_error("weight prefetch: more than 4 ranges at once");
  PrefetchList list{};
  for (const ByteRange& r : ranges)
    if (r.data && r.bytes >= 16) list.data[list.count] = static_cast<const char*>(r.data), list.bytes[list.count++] = r.bytes;
  if (list.count == 0) return;
  FP4LLM_CUDA_CHECK(cudaEventRecord(fork_, stream));
  FP4LLM_CUDA_CHECK(cudaStreamWaitEvent(side_, fork_, 0));
  l2_prefetch_kernel<<<1, 128, 0, side_>>>(list);
  FP4LLM_CUDA_LAUNCHED();
  pending_ = true;
}

void WeightPrefetch::join(cudaStream_t stream) {
  if (!pending_) return;
  FP4LLM_CUDA_CHECK(cudaEventRecord(join_, side_));
  FP4LLM_CUDA_CHECK(cudaStreamWaitEvent(stream, join_, 0));
  pending_ = false;
}

}  // namespace fp4llm::cuda
