// dispatch_bools: each combination of runtime flags reaches the callable with the same flags as
// compile-time constants, in order, exactly once.
#include "util/bool_dispatch.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(BoolDispatch, EveryCombinationArrivesAsConstantsInOrder) {
  for (int bits = 0; bits < 8; ++bits) {
    const bool a = bits & 1, b = bits & 2, c = bits & 4;
    std::vector<int> seen;
    fp4llm::dispatch_bools(
        [&](auto x, auto y, auto z) {
          constexpr int kCode = int(decltype(x)::value) + 2 * int(decltype(y)::value) + 4 * int(decltype(z)::value);
          seen.push_back(kCode);
        },
        a, b, c);
    ASSERT_EQ(seen.size(), 1u) << "bits " << bits;
    EXPECT_EQ(seen[0], bits);
  }
}

TEST(BoolDispatch, NoFlagsCallsOnce) {
  int calls = 0;
  fp4llm::dispatch_bools([&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

}  // namespace
