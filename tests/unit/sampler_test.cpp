// Sampler behaviour against probabilities computed here: empirical frequencies over many draws
// must match the expected renormalised distribution within 4 standard deviations.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "engine/sampler.hpp"
#include "util/error.hpp"

using namespace fp4llm;

namespace {
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}

std::map<int32_t, int> draw(const SamplingParams& sp, const std::vector<float>& logits, int n) {
  Sampler s(sp, 42);
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits;
    ++counts[s.sample(l, {}, {})];
  }
  return counts;
}

void expect_frequencies(const std::map<int32_t, int>& counts, const std::map<int32_t, double>& p, int n) {
  for (const auto& [tok, c] : counts) EXPECT_TRUE(p.count(tok)) << "token " << tok << " should never be drawn";
  for (const auto& [tok, prob] : p) {
    const double expected = prob * n, sd = std::sqrt(n * prob * (1 - prob));
    const int got = counts.count(tok) ? counts.at(tok) : 0;
    EXPECT_NEAR(got, expected, 4 * sd + 1) << "token " << tok;
  }
}
}  // namespace

TEST(Sampler, GreedyAndTopK1PickTheArgmax) {
  const std::vector<float> l = {0.1f, 2.5f, -1.0f, 2.4f};
  for (SamplingParams sp : {SamplingParams{.temperature = 0}, SamplingParams{.top_k = 1}}) {
    Sampler s(sp, 1);
    std::vector<float> x = l;
    EXPECT_EQ(s.sample(x, {}, {}), 1);
  }
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  Sampler s(SamplingParams{.temperature = 0, .repetition_penalty = 2.0f}, 1);
  std::vector<float> l = {2.0f, 1.5f, -1.0f};
  const std::vector<int32_t> prompt = {0, 2};
  EXPECT_EQ(s.sample(l, prompt, {}), 1);
  EXPECT_FLOAT_EQ(l[0], 1.0f);
  EXPECT_FLOAT_EQ(l[2], -2.0f);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountGeneratedTokens) {
  Sampler s(SamplingParams{.temperature = 0, .presence_penalty = 0.3f, .frequency_penalty = 0.5f}, 1);
  std::vector<float> l = {2.0f, 1.5f, -1.0f};
  const std::vector<int32_t> generated = {0, 0};
  EXPECT_EQ(s.sample(l, {}, generated), 1);
  EXPECT_FLOAT_EQ(l[0], 2.0f - 1.0f - 0.3f);
}

TEST(Sampler, PlainSamplingFollowsSoftmax) {
  const int n = 40000;
  expect_frequencies(draw({}, logits_of({0.5, 0.3, 0.15, 0.05}), n), {{0, 0.5}, {1, 0.3}, {2, 0.15}, {3, 0.05}}, n);
}

TEST(Sampler, TemperatureSharpens) {
  const int n = 40000;
  // p^(1/T) with T = 0.5: squares, renormalised.
  const double z = 0.25 + 0.09 + 0.0225 + 0.0025;
  expect_frequencies(draw({.temperature = 0.5f}, logits_of({0.5, 0.3, 0.15, 0.05}), n),
                     {{0, 0.25 / z}, {1, 0.09 / z}, {2, 0.0225 / z}, {3, 0.0025 / z}}, n);
}

TEST(Sampler, TopKTopPMinPKeepTheRightTokens) {
  const int n = 40000;
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  expect_frequencies(draw({.top_k = 2}, l, n), {{0, 0.625}, {1, 0.375}}, n);
  expect_frequencies(draw({.top_p = 0.75f}, l, n), {{0, 0.625}, {1, 0.375}}, n);
  expect_frequencies(draw({.min_p = 0.25f}, l, n), {{0, 0.5 / 0.95}, {1, 0.3 / 0.95}, {2, 0.15 / 0.95}}, n);
}

TEST(Sampler, SeedReproduces) {
  const auto l = logits_of({0.25, 0.25, 0.25, 0.25});
  std::vector<int32_t> a, b, c;
  Sampler s1({.seed = 7}, 1), s2({.seed = 7}, 2), s3({.seed = 8}, 1);
  for (int i = 0; i < 64; ++i) {
    std::vector<float> x = l, y = l, z = l;
    a.push_back(s1.sample(x, {}, {}));
    b.push_back(s2.sample(y, {}, {}));
    c.push_back(s3.sample(z, {}, {}));
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Sampler, RejectsOutOfRangeParameters) {
  EXPECT_THROW(SamplingParams{.temperature = -1}.validate(), Error);
  EXPECT_THROW(SamplingParams{.top_p = 0}.validate(), Error);
  EXPECT_THROW(SamplingParams{.min_p = 1.5f}.validate(), Error);
  EXPECT_THROW(SamplingParams{.repetition_penalty = 0}.validate(), Error);
  EXPECT_THROW(SamplingParams{.presence_penalty = 3}.validate(), Error);
}
