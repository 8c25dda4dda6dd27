// Dequantization of llama.cpp's block formats (F32, F16, BF16, Q8_0, Q5_0, Q4_K, Q6_K) to float32,
// with the same arithmetic order as the `gguf` Python package, so results are bit-identical.
#pragma once

#include <cstdint>

#include "io/gguf_file.hpp"

namespace fp4llm {

// Row `row` of a tensor seen as [rows, dims[0]]; writes dims[0] floats.
void gguf_dequantize_row(const GgufTensor& t, int64_t row, float* out);

}  // namespace fp4llm
