// Accuracy of a model against a reference run of the same weights in 16 bits: perplexity of
// each on a text, the mean KL divergence KL(reference || model) per position, and how often the
// two agree on the most likely next token.
#pragma once

#include <cstdint>
#include <span>

#include "backend/backend.hpp"

namespace fp4llm {

struct EvalResult {
  int64_t predictions = 0;       // positions scored (tokens with a next token in their window)
  double nll = 0, reference_nll = 0;  // summed negative log-likelihoods
  double kl = 0;                 // summed KL(reference || model)
  int64_t top1_agreements = 0;
  double perplexity() const;
  double reference_perplexity() const;
  double mean_kl() const { return predictions ? kl / double(predictions) : 0; }
  double top1_agreement() const { return predictions ? double(top1_agreements) / double(predictions) : 0; }
};

// Scores `tokens` in consecutive windows of `context` tokens, each from an empty cache (both
// backends need room for `context` positions). `reference` may be null: then only the model's
// perplexity is computed.
EvalResult evaluate(Backend& model, Backend* reference, std::span<const int32_t> tokens, int64_t context);

}  // namespace fp4llm
