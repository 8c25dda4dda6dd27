// Turning one position's logits into the next token, with the options users know from vLLM:
// penalties, temperature (0 = greedy), top-k, top-p, min-p, and a per-request seed.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "backend/candidate_rows.hpp"

namespace fp4llm {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy
  int32_t top_k = 0;                // <= 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off; keeps tokens with p >= min_p * p_max
  float presence_penalty = 0.0f;    // subtracted once from every token already generated
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the generated tokens
  float repetition_penalty = 1.0f;  // prompt and generated tokens: logit / r if > 0, else * r
  std::optional<uint64_t> seed;

  // Throws Error naming the first out-of-range field.
  void validate() const;
};

class Sampler {
 public:
  // `fallback_seed` seeds the generator when params.seed is not given.
  Sampler(const SamplingParams& params, uint64_t fallback_seed);

  // `logits` is modified in place (penalties, temperature). `prompt` and `generated` are the
  // sequence's tokens so far, for the penalties.
  int32_t sample(std::span<float> logits, std::span<const int32_t> prompt,
                 std::span<const int32_t> generated);

  // The same draw from a row a backend already narrowed with candidate_cutoff(best,
  // narrowing_temperature()): ascending token ids and their logits. Only for samplers without
  // penalties (has_penalties() false); it picks what sample() would pick from the whole row.
  int32_t sample_candidates(std::span<const int32_t> ids, std::span<const float> logits);

  // True when sample() would return the argmax of the raw logits (greedy, no penalties), so a
  // backend may pick the token itself.
  bool is_plain_greedy() const;
  bool has_penalties() const;

  // The least a backend has to return for this sampler's next draw (ordered: a step serving
  // several samplers returns the largest of their needs).
  enum class Need { kGreedyId, kCandidates, kWholeRow };
  Need need() const { return is_plain_greedy() ? Need::kGreedyId : has_penalties() ? Need::kWholeRow : Need::kCandidates; }
  double narrowing_temperature() const { return params_.temperature; }

 private:
  bool greedy() const;  // temperature 0 or top-k 1: the argmax
  void apply_penalties(std::span<float> logits, std::span<const int32_t> prompt,
                       std::span<const int32_t> generated) const;
  int32_t draw(std::span<const int32_t> ids, std::span<const float> logits);
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;
  CandidateRows candidates_;
};

}  // namespace fp4llm
