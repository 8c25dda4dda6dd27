#include "formats/nvfp4_quantize.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "formats/nvfp4_block.hpp"
#include "util/error.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm {

namespace {
float max_abs(const float* v, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(v[i]));
  return m;
}
}  // namespace

Nvfp4Matrix quantize_nvfp4(int64_t rows, int64_t cols, const RowReader& read_row, Nvfp4ScaleRule rule) {
  if (cols % kNvfp4BlockSize != 0)
    fail("NVFP4 needs the input dimension to be a multiple of {}, got {}", kNvfp4BlockSize, cols);
  const int64_t min_rows = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(cols, 1));

  // Pass 1: the tensor's amax sets the global scale. A NaN or inf weight has no NVFP4 code.
  std::atomic<uint32_t> amax_bits{0};  // non-negative floats order like their bit patterns
  parallel_for(rows, min_rows, [&](int64_t begin, int64_t end) {
    std::vector<float> row(cols);
    float local = 0;
    for (int64_t r = begin; r < end; ++r) {
      read_row(r, row.data());
      for (float v : row)
        if (!std::isfinite(v)) fail("row {} holds a non-finite value ({})", r, v);
      local = std::max(local, max_abs(row.data(), cols));
    }
    uint32_t seen = amax_bits.load();
    while (float_bits(local) > seen && !amax_bits.compare_exchange_weak(seen, float_bits(local))) {
    }
  });

  Nvfp4Matrix out;
  out.global_scale = nvfp4_global_scale(bits_float(amax_bits.load()));
  out.packed.resize(size_t(rows * cols / 2));
  out.block_scales.resize(size_t(rows * cols / kNvfp4BlockSize));

  // Pass 2: per-block scales and codes.
  parallel_for(rows, min_rows, [&](int64_t begin, int64_t end) {
    std::vector<float> row(cols);
    for (int64_t r = begin; r < end; ++r) {
      read_row(r, row.data());
      for (int64_t b = 0; b < cols / kNvfp4BlockSize; ++b) {
        const float* block = row.data() + b * kNvfp4BlockSize;
        const uint8_t scale =
            nvfp4_choose_block_scale(rule, block, max_abs(block, kNvfp4BlockSize), out.global_scale);
        out.block_scales[size_t(r * (cols / kNvfp4BlockSize) + b)] = scale;
        nvfp4_quantize_block(block, scale, out.global_scale,
                             &out.packed[size_t(r * (cols / 2) + b * kNvfp4BlockSize / 2)]);
      }
    }
  });
  return out;
}

}  // namespace fp4llm
