#include "engine/token_logprobs.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace fp4llm {

GeneratedToken token_logprobs(std::span<const float> logits, int32_t chosen, int32_t top_n) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l) - max_logit);
  const double log_z = max_logit + std::log(sum);
  const auto logprob = [&](int32_t id) { return float(double(logits[size_t(id)]) - log_z); };

  GeneratedToken t{chosen, logprob(chosen), {}};
  const int32_t n = std::clamp<int32_t>(top_n, 0, int32_t(logits.size()));
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  });
  for (int32_t i = 0; i < n; ++i) t.top.push_back({order[size_t(i)], logprob(order[size_t(i)])});
  return t;
}

}  // namespace fp4llm
