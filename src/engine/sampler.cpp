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

bool Sampler::greedy() const { return params_.temperature == 0.0f || params_.top_k == 1; }

bool Sampler::has_penalties() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
}

bool Sampler::is_plain_greedy() const { return greedy() && !has_penalties(); }

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> prompt,
                        std::span<const int32_t> generated) {
  if (logits.empty()) fail("sample: empty logits");
  apply_penalties(logits, prompt, generated);
  if (greedy()) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  candidates_.clear();
  append_narrowed(logits, params_.temperature, candidates_);
  return draw(candidates_.ids_of(0), candidates_.logits_of(0));
}

int32_t Sampler::sample_candidates(std::span<const int32_t> ids, std::span<const float> logits) {
  if (ids.empty() || ids.size() != logits.size()) fail("sample: {} candidate ids for {} logits", ids.size(), logits.size());
  if (has_penalties()) fail("sample: a sampler with penalties needs the whole row");
  if (greedy()) return ids[size_t(std::max_element(logits.begin(), logits.end()) - logits.begin())];
  return draw(ids, logits);
}

// Order of the filters: temperature, then top-k, top-p and min-p on the tempered
// distribution of the candidates; the survivors are renormalised and one is drawn. Only top-p and
// min-p need the tokens in order, and only as far as their cut: a growing prefix is sorted, not
// the candidates. Candidates are positions into ids/logits; ids ascend, so ties break by id.
int32_t Sampler::draw(std::span<const int32_t> ids, std::span<const float> logits) {
  const double temperature = params_.temperature;
  const float best = *std::max_element(logits.begin(), logits.end());
  order_.resize(logits.size());
  std::iota(order_.begin(), order_.end(), 0);
  const auto by_logit = [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  };
  size_t sorted_prefix = 0;  // order_[0, sorted_prefix) holds the best tokens, in order
  if (params_.top_k > 0 && size_t(params_.top_k) < order_.size()) {
    // A heap of k rejects most tokens with one comparison: cheaper than selecting, for small k.
    std::partial_sort(order_.begin(), order_.begin() + params_.top_k, order_.end(), by_logit);
    order_.resize(size_t(params_.top_k));
    sorted_prefix = order_.size();
  }
  // Unnormalised probabilities relative to the best token (which has 1).
  const auto weight = [&](int32_t t) { return std::exp((double(logits[size_t(t)]) - best) / temperature); };
  double total = 0;
  for (int32_t t : order_) total += weight(t);

  // The draw is over the first `keep` tokens, whose weights sum to `kept_total`.
  size_t keep = order_.size();
  double kept_total = total;
  if (params_.top_p < 1.0f || params_.min_p > 0.0f) {
    const double floor = params_.min_p;  // p >= min_p * p_max, relative weights: w >= min_p
    double mass = 0;
    size_t walked = 0, prefix = std::min<size_t>(order_.size(), std::max<size_t>(sorted_prefix, 256));
    bool decided = false;
    while (!decided) {
      if (prefix > sorted_prefix) {
        std::partial_sort(order_.begin() + long(walked), order_.begin() + long(prefix), order_.end(), by_logit);
        sorted_prefix = prefix;
      }
      for (; walked < prefix && !decided; ++walked) {
        const double w = weight(order_[walked]);
        if (walked > 0 && params_.min_p > 0.0f && w < floor) {
          keep = walked;
          kept_total = mass;
          decided = true;
          break;
        }
        mass += w;
        if (params_.top_p < 1.0f && mass / total >= params_.top_p) {
          keep = walked + 1;
          kept_total = mass;
          decided = true;
        }
      }
      if (prefix == order_.size()) break;
      prefix = std::min(order_.size(), prefix * 8);
    }
  }
  std::uniform_real_distribution<double> u(0.0, kept_total);
  double r = u(rng_);
  for (size_t i = 0; i < keep; ++i)
    if ((r -= weight(order_[i])) < 0) return ids[size_t(order_[i])];
  return ids[size_t(order_[keep - 1])];
}

}  // namespace fp4llm
