// Logits rows narrowed to the tokens a sampler draw can pick, so that a GPU backend returns a few
// hundred (id, logit) pairs per sequence instead of its whole vocabulary (600 KB a row for
// Qwen3's 151,936 tokens). The rule is shared with the sampler (engine/sampler.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/number_formats.hpp"  // FP4LLM_HD

namespace fp4llm {

// Tokens this many nats (times the temperature) below the best one carry less than e^-40 of its
// probability each; leaving them out changes the drawn distribution by less than the precision
// of the draw itself, and spares an exp per token.
inline constexpr double kNegligibleNats = 40.0;

// A row keeps the tokens whose logit is at least this (temperature 0: the best tokens only). On
// the host and in the GPU's narrowing kernel (narrow_rows.cu), so both cut alike.
FP4LLM_HD float candidate_cutoff(float best, double temperature) { return float(best - kNegligibleNats * temperature); }

struct CandidateRows {
  std::vector<int64_t> offsets = {0};  // row r: entries [offsets[r], offsets[r + 1])
  std::vector<int32_t> ids;            // ascending within a row
  std::vector<float> logits;

  size_t rows() const { return offsets.size() - 1; }
  std::span<const int32_t> ids_of(size_t r) const {
    return std::span(ids).subspan(size_t(offsets[r]), size_t(offsets[r + 1] - offsets[r]));
  }
  std::span<const float> logits_of(size_t r) const {
    return std::span(logits).subspan(size_t(offsets[r]), size_t(offsets[r + 1] - offsets[r]));
  }
  void clear() {
    offsets.assign(1, 0);
    ids.clear();
    logits.clear();
  }
  void append(std::span<const int32_t> row_ids, std::span<const float> row_logits);
};

// Throws Error unless there is one temperature per logits row (forward_candidates' contract).
void check_temperatures(size_t temperatures, size_t rows);

// Appends `row` narrowed with `temperature` to `out`.
void append_narrowed(std::span<const float> row, double temperature, CandidateRows& out);

}  // namespace fp4llm
