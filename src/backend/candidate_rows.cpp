#include "backend/candidate_rows.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace fp4llm {

void CandidateRows::append(std::span<const int32_t> row_ids, std::span<const float> row_logits) {
  ids.insert(ids.end(), row_ids.begin(), row_ids.end());
  logits.insert(logits.end(), row_logits.begin(), row_logits.end());
  offsets.push_back(int64_t(ids.size()));
}

void check_temperatures(size_t temperatures, size_t rows) {
  if (temperatures != rows) fail("forward_candidates: {} temperatures for {} logits rows", temperatures, rows);
}

void append_narrowed(std::span<const float> row, double temperature, CandidateRows& out) {
  const float cutoff = candidate_cutoff(*std::max_element(row.begin(), row.end()), temperature);
  for (size_t i = 0; i < row.size(); ++i)
    if (row[i] >= cutoff) out.ids.push_back(int32_t(i)), out.logits.push_back(row[i]);
  out.offsets.push_back(int64_t(out.ids.size()));
}

}  // namespace fp4llm
