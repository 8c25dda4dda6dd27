#include "engine/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/error.hpp"

namespace fp4llm {

void SamplingParams::validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature)) fail("temperature must be >= 0, got {}", temperature);
  if (!(top_p > 0 && top_p <= 1)) fail("top_p must be in (0, 1], got {}", top_p);
  if (!(min_p >= 0 && min_p <= 1)) fail("min_p must be in [0, 1], got {}", min_p);
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty))
    fail("repetition_penalty must be > 0, got {}", repetition_penalty);
  if (!std::isfinite(presence_penalty) || presence_penalty < -2 || presence_penalty > 2)
    fail("presence_penalty must be in [-2, 2], got {}", presence_penalty);
  if (!std::isfinite(frequency_penalty) || frequency_penalty < -2 || frequency_penalty > 2)
    fail("frequency_penalty must be in [-2, 2], got {}", frequency_penalty);
}

Sampler::Sampler(const SamplingParams& params, uint64_t fallback_seed)
    : params_(params), rng_(params.seed.value_or(fallback_seed)) {
  params_.validate();
}

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> prompt,
                              std::span<const int32_t> generated) const {
  const int64_t vocab = int64_t(logits.size());
  const auto in_vocab = [&](int32_t t) { return t >= 0 && t < vocab; };
  if (params_.repetition_penalty != 1.0f) {
    std::vector<bool> seen(size_t(vocab), false);
    for (auto list : {prompt, generated})
      for (int32_t t : list)
        if (in_vocab(t)) seen[size_t(t)] = true;
    for (int64_t t = 0; t < vocab; ++t)
      if (seen[size_t(t)]) {
        float& l = logits[size_t(t)];
        l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
      }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    std::vector<int32_t> counts(size_t(vocab), 0);
    for (int32_t t : generated)
      if (in_vocab(t)) ++counts[size_t(t)];
    for (int64_t t = 0; t < vocab; ++t)
      if (counts[size_t(t)] > 0)
        logits[size_t(t)] -= params_.frequency_penalty * float(counts[size_t(t)]) + params_.presence_penalty;
  }
}

// Order of the filters: temperature, then top-k, top-p and min-p on the tempered
// distribution; the survivors are renormalised and one is drawn.
int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> prompt,
                        std::span<const int32_t> generated) {
  if (logits.empty()) fail("sample: empty logits");
  apply_penalties(logits, prompt, generated);
  if (params_.temperature == 0.0f || params_.top_k == 1)
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());

  const int32_t vocab = int32_t(logits.size());
  order_.resize(size_t(vocab));
  std::iota(order_.begin(), order_.end(), 0);
  const int32_t k = params_.top_k > 0 ? std::min(params_.top_k, vocab) : vocab;
  const auto by_logit = [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  };
  // by_logit is a total order, so both give the same sequence; a heap-based partial_sort of a
  // whole 150k vocabulary is several times slower than a full sort.
  if (k == vocab) std::sort(order_.begin(), order_.end(), by_logit);
  else std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), by_logit);
  order_.resize(size_t(k));

  // Softmax over the top k (the rest have probability zero after top-k anyway).
  std::vector<double> p(order_.size());
  const double max_logit = logits[size_t(order_[0])];
  double sum = 0;
  for (size_t i = 0; i < order_.size(); ++i)
    sum += p[i] = std::exp((double(logits[size_t(order_[i])]) - max_logit) / params_.temperature);
  for (double& v : p) v /= sum;

  size_t keep = p.size();
  if (params_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
    double mass = 0;
    for (size_t i = 0; i < p.size(); ++i)
      if ((mass += p[i]) >= params_.top_p) {
        keep = i + 1;
        break;
      }
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * p[0];
    size_t i = 1;
    while (i < keep && p[i] >= floor) ++i;
    keep = i;
  }
  std::uniform_real_distribution<double> u(0.0, std::accumulate(p.begin(), p.begin() + long(keep), 0.0));
  double r = u(rng_);
  for (size_t i = 0; i < keep; ++i)
    if ((r -= p[i]) < 0) return order_[i];
  return order_[keep - 1];
}

}  // namespace fp4llm
