// The reduction of a traced decode step (backend/kernel_timeline.hpp), on hand-made timelines
// whose critical path is worked out by hand in each test.
#include "backend/kernel_timeline.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

namespace fp4llm {
namespace {

TracedKernel kernel(const std::string& name, int32_t grid_x, uint64_t start_us, uint64_t end_us, uint32_t launch = 1) {
  return {name, {grid_x, 1, 1}, {256, 1, 1}, start_us * 1000, end_us * 1000, launch};
}

const KernelCost& find(const StepTimeline& t, const std::string& name, int32_t grid_x) {
  for (const KernelCost& k : t.kernels)
    if (k.name == name && k.grid[0] == grid_x) return k;
  throw std::runtime_error("no " + name);
}

TEST(KernelTimeline, OverlappedKernelsAddOnlyWhatExtendsTheStep) {
  // a: 0-10; b starts early at 4 and ends at 12 (adds 2); c lies inside b (adds 0); d: 15-20
  // (adds 8, counting the 3 us gap before it). Span 20 = 10 + 2 + 0 + 8.
  std::vector<TracedKernel> step = {kernel("d", 1, 15, 20), kernel("b", 1, 4, 12), kernel("a", 1, 0, 10),
                                    kernel("c", 1, 5, 9)};
  for (int i = 0; i < 4; ++i) step.push_back(kernel("pad", 1, 1, 2));  // inside a: adds nothing
  const StepTimeline t = reduce_step_timeline(step);
  EXPECT_EQ(t.steps, 1);
  EXPECT_DOUBLE_EQ(t.span_us, 20.0);
  EXPECT_DOUBLE_EQ(find(t, "a", 1).critical_us, 10.0);
  EXPECT_DOUBLE_EQ(find(t, "b", 1).critical_us, 2.0);
  EXPECT_DOUBLE_EQ(find(t, "c", 1).critical_us, 0.0);
  EXPECT_DOUBLE_EQ(find(t, "d", 1).critical_us, 8.0);
  EXPECT_DOUBLE_EQ(find(t, "pad", 1).critical_us, 0.0);
  double sum = 0;
  for (const KernelCost& k : t.kernels) sum += k.critical_us;
  EXPECT_DOUBLE_EQ(sum, t.span_us);
  EXPECT_EQ(t.kernels.front().name, "a");  // largest first
  // In start order a, pad x4, b, c, d: b starts 4 - 2 = 2 us after the last pad's end; d 15 - 9.
  EXPECT_DOUBLE_EQ(find(t, "b", 1).mean_lead_us, 2.0);
  EXPECT_DOUBLE_EQ(find(t, "d", 1).mean_lead_us, 6.0);
  EXPECT_DOUBLE_EQ(find(t, "b", 1).mean_us, 8.0);
}

TEST(KernelTimeline, SignaturesSplitByGridAndAverageOverSteps) {
  std::vector<TracedKernel> all;
  for (uint32_t launch = 1; launch <= 2; ++launch) {
    const uint64_t t0 = launch * 1000;  // steps far apart; only times within a step matter
    // The same kernel twice a step with two grids (as qkv and o_proj), one of them twice.
    all.push_back(kernel("gemv", 320, t0, t0 + 6, launch));
    all.push_back(kernel("gemv", 128, t0 + 6, t0 + 9, launch));
    all.push_back(kernel("gemv", 128, t0 + 9, t0 + 9 + launch, launch));  // 1 us, then 2 us
    for (int i = 0; i < 5; ++i) all.push_back(kernel("norm", 1, t0 + 1, t0 + 2, launch));
  }
  all.push_back(kernel("sampling", 1, 5000, 5003, 7));  // a launch of its own: not a step
  const StepTimeline t = reduce_step_timeline(all);
  EXPECT_EQ(t.steps, 2);
  EXPECT_DOUBLE_EQ(t.span_us, (10.0 + 11.0) / 2);
  const KernelCost& wide = find(t, "gemv", 320);
  const KernelCost& narrow = find(t, "gemv", 128);
  EXPECT_DOUBLE_EQ(wide.launches_per_step, 1.0);
  EXPECT_DOUBLE_EQ(narrow.launches_per_step, 2.0);
  EXPECT_DOUBLE_EQ(wide.critical_us, 6.0);
  EXPECT_DOUBLE_EQ(narrow.critical_us, (3.0 + 1.0 + 3.0 + 2.0) / 2);
  EXPECT_DOUBLE_EQ(narrow.mean_us, (3.0 + 1.0 + 3.0 + 2.0) / 4);
  for (const KernelCost& k : t.kernels) EXPECT_NE(k.name, "sampling");
}

TEST(KernelTimeline, LeadIsPerLaunchAndTheSpanEndsAtTheLatestEnd) {
  // One step: "long" 0-30 covers everything after it; "gemv" twice, with leads 5 - 30 = -25
  // (its start minus long's end) and 8 - 6 = +2 (after the first gemv's end); the last-started
  // kernel ("tail", 20-22) ends before "long" does, so the span is 30, not 22.
  std::vector<TracedKernel> step = {kernel("long", 1, 0, 30), kernel("gemv", 2, 5, 6), kernel("gemv", 2, 8, 9),
                                    kernel("tail", 1, 20, 22)};
  for (int i = 0; i < 4; ++i) step.push_back(kernel("pad" + std::to_string(i), 1, 10 + i, 11 + i));
  const StepTimeline t = reduce_step_timeline(step);
  EXPECT_DOUBLE_EQ(t.span_us, 30.0);
  const KernelCost& gemv = find(t, "gemv", 2);
  EXPECT_DOUBLE_EQ(gemv.launches_per_step, 2.0);
  EXPECT_DOUBLE_EQ(gemv.mean_lead_us, (-25.0 + 2.0) / 2);  // per launch, not per step
  EXPECT_DOUBLE_EQ(gemv.critical_us, 0.0);
  EXPECT_DOUBLE_EQ(find(t, "long", 1).critical_us, 30.0);
  // Equal shares (all the zeros) in a fixed order: by name.
  std::vector<std::string> zeros;
  for (const KernelCost& k : t.kernels)
    if (k.critical_us == 0.0) zeros.push_back(k.name);
  EXPECT_EQ(zeros, (std::vector<std::string>{"gemv", "pad0", "pad1", "pad2", "pad3", "tail"}));
}

TEST(KernelTimeline, RejectsTracesWithoutAStepOrWithTimesBackwards) {
  EXPECT_THROW(reduce_step_timeline({kernel("a", 1, 0, 1), kernel("b", 1, 1, 2)}), Error);
  std::vector<TracedKernel> backwards(8, kernel("a", 1, 0, 1));
  backwards[3].end_ns = 0;
  backwards[3].start_ns = 5000;
  EXPECT_THROW(reduce_step_timeline(backwards), Error);
}

TEST(KernelTimeline, ShortNamesDropNamespacesAndParameters) {
  EXPECT_EQ(short_kernel_name("void fp4llm::cuda::(anonymous namespace)::nvfp4_gemv_direct_kernel<1, true, false, true, "
                              "false>(fp4llm::cuda::(anonymous namespace)::GemvArgs)"),
            "nvfp4_gemv_direct_kernel<1, true, false, true, false>");
  EXPECT_EQ(short_kernel_name("fp4llm::cuda::rope_cache_kernel(float const*, int const*)"), "rope_cache_kernel");
  EXPECT_EQ(short_kernel_name("void f<std::pair<int, int>>(int)"), "f<std::pair<int, int>>");
  EXPECT_EQ(short_kernel_name("plain"), "plain");
}

}  // namespace
}  // namespace fp4llm
