// Backend::forward_candidates' host narrowing against the rule written out here: per row, the
// tokens whose logit is at least float(max - 40 * temperature), ascending ids, with their logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "backend/backend.hpp"
#include "util/error.hpp"

using namespace fp4llm;

namespace {

// A backend whose forward() returns fixed logits, one row per sequence.
class FixedLogits final : public Backend {
 public:
  FixedLogits(int64_t vocab, std::vector<float> logits) : logits_(std::move(logits)) { config_.vocab_size = vocab; }
  const ModelConfig& config() const override { return config_; }
  void forward(const ForwardBatch&, std::vector<float>& logits) override { logits = logits_; }

 private:
  ModelConfig config_;
  std::vector<float> logits_;
};

}  // namespace

TEST(CandidateRows, HostNarrowingKeepsTheTokensNearTheBestOfEachRow) {
  const int64_t vocab = 3000;
  const std::vector<float> temperatures = {0.0f, 0.5f, 1.0f, 30.0f, 0.01f};
  std::mt19937 rng(3);
  std::vector<float> logits(temperatures.size() * size_t(vocab));
  for (size_t r = 0; r < temperatures.size(); ++r) {
    std::normal_distribution<float> normal(float(r), 4.0f);
    for (int64_t i = 0; i < vocab; ++i) logits[r * size_t(vocab) + size_t(i)] = normal(rng);
    logits[r * size_t(vocab) + 7] = logits[r * size_t(vocab) + 2999] = 60.0f;  // a tie for the best
  }
  FixedLogits backend(vocab, logits);
  CandidateRows got;
  backend.forward_candidates(ForwardBatch{}, temperatures, got);
  ASSERT_EQ(got.rows(), temperatures.size());
  for (size_t r = 0; r < temperatures.size(); ++r) {
    const auto row = logits.begin() + std::ptrdiff_t(r * size_t(vocab));
    const float cutoff = float(double(*std::max_element(row, row + vocab)) - 40.0 * double(temperatures[r]));
    std::vector<int32_t> want_ids;
    std::vector<float> want_logits;
    for (int64_t i = 0; i < vocab; ++i)
      if (row[i] >= cutoff) want_ids.push_back(int32_t(i)), want_logits.push_back(row[i]);
    EXPECT_EQ(std::vector<int32_t>(got.ids_of(r).begin(), got.ids_of(r).end()), want_ids) << "row " << r;
    EXPECT_EQ(std::vector<float>(got.logits_of(r).begin(), got.logits_of(r).end()), want_logits) << "row " << r;
  }
  EXPECT_EQ(got.ids_of(0).size(), 2u) << "greedy keeps the tied best tokens only";
  EXPECT_EQ(got.ids_of(3).size(), size_t(vocab)) << "a hot row keeps everything";
}

TEST(CandidateRows, NamesAMissingTemperature) {
  FixedLogits backend(4, std::vector<float>(8, 1.0f));
  CandidateRows got;
  const std::vector<float> one = {1.0f};
  EXPECT_THROW(backend.forward_candidates(ForwardBatch{}, one, got), Error);
}
