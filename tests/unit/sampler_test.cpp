// Sampler behaviour against probabilities computed here: empirical frequencies over many draws
// must match the expected renormalised distribution within 4 standard deviations.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <numeric>
#include <random>
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

// A vocabulary large enough that the nucleus holds thousands of tokens (the sampler sorts a
// growing prefix, 256 first): every draw lies in the kept set computed here by a full sort, and
// draws reach deep into it.
TEST(Sampler, LargeNucleusMatchesAFullSortReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::vector<float> logits(6000);
  for (float& l : logits) l = normal(rng);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  });
  double z = 0;
  for (float l : logits) z += std::exp(double(l) - logits[size_t(order[0])]);
  const auto prob = [&](size_t rank) { return std::exp(double(logits[size_t(order[rank])]) - logits[size_t(order[0])]) / z; };
  for (const SamplingParams& sp : {SamplingParams{.top_p = 0.9f}, SamplingParams{.top_k = 3000, .top_p = 0.95f},
                                   SamplingParams{.min_p = 0.5f}, SamplingParams{.top_p = 0.97f, .min_p = 0.6f}}) {
    // Reference: prefix of the sorted order (top-k), renormalised, cut by top-p then min-p.
    const size_t k = sp.top_k > 0 ? size_t(sp.top_k) : order.size();
    double zk = 0;
    for (size_t i = 0; i < k; ++i) zk += prob(i);
    size_t keep = k;
    double mass = 0;
    for (size_t i = 0; i < k && sp.top_p < 1; ++i)
      if ((mass += prob(i) / zk) >= sp.top_p) {
        keep = i + 1;
        break;
      }
    for (size_t i = 1; i < keep; ++i)
      if (prob(i) < sp.min_p * prob(0)) {
        keep = i;
        break;
      }
    std::vector<int> rank_of(logits.size());
    for (size_t i = 0; i < order.size(); ++i) rank_of[size_t(order[i])] = int(i);
    Sampler s(sp, 9);
    int deepest = 0;
    for (int i = 0; i < 1000; ++i) {
      std::vector<float> l = logits;
      const int rank = rank_of[size_t(s.sample(l, {}, {}))];
      ASSERT_LT(rank, int(keep)) << "drew a token the filters remove (top_p " << sp.top_p << ", min_p " << sp.min_p << ")";
      deepest = std::max(deepest, rank);
    }
    EXPECT_GT(deepest, int(keep) * 3 / 4) << "draws should reach the end of a " << keep << "-token kept set";
  }
}

// A row narrowed the way a backend narrows it (tokens within 40 nats x temperature of the best,
// ascending ids; the rule written out here) gives the same draws as the whole row, seed for seed,
// for every filter combination, sharp and flat rows, and greedy.
TEST(Sampler, DrawsFromANarrowedRowMatchTheWholeRow) {
  std::mt19937 rng(17);
  const SamplingParams cases[] = {
      {.temperature = 0.0f}, {.temperature = 0.7f}, {.temperature = 1.0f, .top_k = 40}, {.temperature = 1.3f, .top_p = 0.9f},
      {.temperature = 0.8f, .min_p = 0.05f}, {.temperature = 1.0f, .top_k = 5000, .top_p = 0.95f, .min_p = 0.01f},
      {.temperature = 60.0f}, {.temperature = 1.0f, .top_k = 1}};
  for (float spread : {0.3f, 3.0f, 12.0f}) {
    std::normal_distribution<float> normal(0.0f, spread);
    std::vector<float> logits(7000);
    for (float& l : logits) l = normal(rng);
    logits[123] = logits[4567] = *std::max_element(logits.begin(), logits.end()) + 0.5f;  // a tie for the best
    for (const SamplingParams& sp : cases) {
      const float best = *std::max_element(logits.begin(), logits.end());
      const float cutoff = float(best - 40.0 * double(sp.temperature));
      std::vector<int32_t> ids;
      std::vector<float> narrowed;
      for (size_t i = 0; i < logits.size(); ++i)
        if (logits[i] >= cutoff) ids.push_back(int32_t(i)), narrowed.push_back(logits[i]);
      Sampler whole(sp, 77), narrow(sp, 77);
      for (int i = 0; i < 200; ++i) {
        std::vector<float> l = logits;
        ASSERT_EQ(whole.sample(l, {}, {}), narrow.sample_candidates(ids, narrowed))
            << "draw " << i << ", spread " << spread << ", temperature " << sp.temperature << ", top_k " << sp.top_k;
      }
    }
  }
}

TEST(Sampler, NarrowedRowsRefuseSamplersWithPenalties) {
  Sampler s(SamplingParams{.presence_penalty = 0.5f}, 1);
  const std::vector<int32_t> ids = {3};
  const std::vector<float> logits = {1.0f};
  EXPECT_TRUE(s.has_penalties());
  EXPECT_THROW(s.sample_candidates(ids, logits), Error);
}
