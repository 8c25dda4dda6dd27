#include "engine/evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "util/error.hpp"

namespace fp4llm {

double EvalResult::perplexity() const { return predictions ? std::exp(nll / double(predictions)) : 0; }
double EvalResult::reference_perplexity() const {
  return predictions ? std::exp(reference_nll / double(predictions)) : 0;
}

namespace {

std::vector<float> all_logits(Backend& b, std::span<const int32_t> window) {
  std::vector<int32_t> table(static_cast<size_t>((int64_t(window.size()) + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize));
  std::iota(table.begin(), table.end(), 0);
  ForwardBatch batch;
  batch.all_logits = true;
  batch.sequences.push_back({window, 0, table});
  std::vector<float> logits;
  b.forward(batch, logits);
  return logits;
}

// log-softmax in double precision.
std::vector<double> log_probs(const float* logits, int64_t vocab) {
  const double max = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - max);
  const double log_z = max + std::log(sum);
  std::vector<double> lp(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) lp[size_t(i)] = double(logits[i]) - log_z;
  return lp;
}

}  // namespace

EvalResult evaluate(Backend& model, Backend* reference, std::span<const int32_t> tokens, int64_t context) {
  if (context < 2) fail("eval: the context must hold at least 2 tokens");
  if (tokens.size() < 2) fail("eval: the text has fewer than 2 tokens");
  const int64_t vocab = model.config().vocab_size;
  EvalResult r;
  for (size_t start = 0; start + 1 < tokens.size(); start += size_t(context)) {
    const auto window = tokens.subspan(start, std::min(tokens.size() - start, size_t(context)));
    const std::vector<float> logits = all_logits(model, window);
    const std::vector<float> ref = reference ? all_logits(*reference, window) : std::vector<float>();
    for (size_t i = 0; i + 1 < window.size(); ++i) {
      const int32_t target = window[i + 1];
      const float* l = &logits[i * size_t(vocab)];
      const std::vector<double> lp = log_probs(l, vocab);
      r.nll -= lp[size_t(target)];
      ++r.predictions;
      if (!reference) continue;
      const float* lr = &ref[i * size_t(vocab)];
      const std::vector<double> lq = log_probs(lr, vocab);
      r.reference_nll -= lq[size_t(target)];
      for (int64_t v = 0; v < vocab; ++v) r.kl += std::exp(lq[size_t(v)]) * (lq[size_t(v)] - lp[size_t(v)]);
      if (std::max_element(l, l + vocab) - l == std::max_element(lr, lr + vocab) - lr) ++r.top1_agreements;
    }
  }
  return r;
}

}  // namespace fp4llm
