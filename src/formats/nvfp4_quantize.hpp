// NVFP4 quantization of a whole weight matrix on the host (quantize-at-load and
// `fp4llm quantize`). Block numerics live in nvfp4_block.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "formats/nvfp4_scale_search.hpp"

namespace fp4llm {

struct Nvfp4Matrix {
  std::vector<uint8_t> packed;        // [rows, cols/2]
  std::vector<uint8_t> block_scales;  // [rows, cols/16]
  float global_scale = 1;
};

// `read_row(r, out)` writes row r (cols floats) of the source matrix; it is called from several
// threads at once. cols must be a multiple of kNvfp4BlockSize.
using RowReader = std::function<void(int64_t row, float* out)>;
Nvfp4Matrix quantize_nvfp4(int64_t rows, int64_t cols, const RowReader& read_row,
                           Nvfp4ScaleRule rule = Nvfp4ScaleRule::Amax);

}  // namespace fp4llm
