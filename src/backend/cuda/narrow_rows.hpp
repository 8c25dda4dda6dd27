// Logits rows narrowed on the device to their sampling candidates (the rule of
// backend/candidate_rows.hpp), so that a sampled decode step sends a few hundred (id, logit)
// pairs per sequence to the host instead of the whole vocabulary.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fp4llm::cuda {

// Row r of `logits` ([rows][vocab]) keeps the tokens at or above candidate_cutoff(max of the row,
// temperatures[r]): the first `capacity` of them in ascending id order go to ids/values
// ([rows][capacity]), and counts[r] gets how many there are in all (more than `capacity`: the
// caller needs the whole row).
void narrow_rows(const float* logits, int64_t rows, int64_t vocab, const float* temperatures, int capacity,
                 int32_t* ids, float* values, int32_t* counts, cudaStream_t stream);

}  // namespace fp4llm::cuda
