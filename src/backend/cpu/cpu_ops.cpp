#include "backend/cpu/cpu_ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/number_formats.hpp"
#include "io/tensor_store.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm::cpu {

namespace {
// Output features per thread chunk: enough work to amortise a thread start.
int64_t min_rows_per_chunk(int64_t in, int64_t rows) {
  return std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, in * rows));
}

// Eight partial sums so the compiler can keep several multiply-adds in flight; the order of
// summation is fixed, so results do not depend on batch size or threading. `load(i)` gives
// element i of the weight row as a float (stored float, or BF16 widened exactly).
template <typename Load>
float dot_with(Load load, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += load(i + k) * b[i + k];
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += load(i) * b[i];
  return sum;
}

float dot(const float* a, const float* b, int64_t n) {
  return dot_with([a](int64_t i) { return a[i]; }, b, n);
}

// A BF16 weight row against one token without widening the row first: the same products and
// the same order of summation as widening then dot(), so the result is identical.
float dot_bf16(const uint8_t* row, const float* b, int64_t n) {
  return dot_with(
      [row](int64_t i) {
        uint16_t v;
        std::memcpy(&v, row + 2 * i, 2);
        return bf16_to_float(v);
      },
      b, n);
}

void dot_rows(const float* w_row, const float* x, int64_t rows, int64_t in, int64_t out,
              int64_t o, float* y) {
  for (int64_t m = 0; m < rows; ++m) y[m * out + o] = dot(w_row, x + m * in, in);
}
}  // namespace

void linear(const QuantizedLinear& w, const float* x, int64_t rows, float* y) {
  const int64_t in = w.in_features, out = w.out_features;
  parallel_for(out, min_rows_per_chunk(in, rows), [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t o = begin; o < end; ++o) {
      w.dequantize_row(o, row.data());
      dot_rows(row.data(), x, rows, in, out, o, y);
    }
  });
}

void linear_dense(const TensorView& w, const float* x, int64_t rows, float* y) {
  const int64_t out = w.shape[0], in = w.shape[1];
  if (rows == 1 && w.dtype == DType::BF16) {  // decode's lm_head: one pass over the weight bytes
    parallel_for(out, min_rows_per_chunk(in, rows), [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) y[o] = dot_bf16(w.data.data() + size_t(2 * o * in), x, in);
    });
    return;
  }
  parallel_for(out, min_rows_per_chunk(in, rows), [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t o = begin; o < end; ++o) {
      read_floats(w, o * in, in, row.data());
      dot_rows(row.data(), x, rows, in, out, o, y);
    }
  });
}

std::vector<float> bf16_rounded(const float* x, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = bf16_to_float(float_to_bf16(x[i]));
  return out;
}

float fp8_row_scale(const QuantizedLinear& w, int64_t row) {
  const int64_t blocks = w.in_features / kNvfp4BlockSize;
  const uint8_t* scales = w.block_scales.data() + row * blocks;
  float largest = 0;
  for (int64_t b = 0; b < blocks; ++b) largest = std::max(largest, e4m3_to_float(scales[b]));
  return e4m3_row_scale(largest, w.global_scale);
}

namespace {
// x / scale rounded to E4M3 (saturating), as a float.
void to_e4m3(const float* x, int64_t n, float scale, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = e4m3_to_float(float_to_e4m3(x[i] / scale));
}
}  // namespace

void linear_fp8(const QuantizedLinear& w, const float* x, int64_t rows, float* y) {
  const int64_t in = w.in_features, out = w.out_features;
  std::vector<float> x8(static_cast<size_t>(rows * in)), x_scale(static_cast<size_t>(rows));
  for (int64_t m = 0; m < rows; ++m) {
    const std::vector<float> x16 = bf16_rounded(x + m * in, in);
    float amax = 0;
    for (float v : x16) amax = std::max(amax, std::fabs(v));
    x_scale[size_t(m)] = e4m3_token_scale(amax);
    to_e4m3(x16.data(), in, x_scale[size_t(m)], &x8[size_t(m * in)]);
  }
  parallel_for(out, min_rows_per_chunk(in, rows), [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t o = begin; o < end; ++o) {
      w.dequantize_row(o, row.data());
      const float scale = fp8_row_scale(w, o);
      to_e4m3(row.data(), in, scale, row.data());
      for (int64_t m = 0; m < rows; ++m) y[m * out + o] = dot(row.data(), &x8[size_t(m * in)], in) * (scale * x_scale[size_t(m)]);
    }
  });
}

void linear(const LinearWeight& w, const float* x, int64_t rows, float* y) {
  if (w.nvfp4)
    linear(*w.nvfp4, x, rows, y);
  else
    linear_dense(*w.dense, x, rows, y);
}

void rms_norm(float* x, int64_t n, std::span<const float> w, double eps, NormStyle style) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
  const float inv = float(1.0 / std::sqrt(sum / double(n) + eps));
  for (int64_t i = 0; i < n; ++i) {
    const float g = style == NormStyle::Weight ? w[size_t(i)] : 1.0f + w[size_t(i)];
    x[i] = x[i] * inv * g;
  }
}

std::vector<float> rope_inv_freq(int64_t head_dim, double theta, double linear_factor) {
  std::vector<float> f(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i)
    f[size_t(i)] = float(1.0 / std::pow(theta, double(2 * i) / double(head_dim)) / linear_factor);
  return f;
}

void apply_rope(float* x, int64_t head_dim, int64_t position, std::span<const float> inv_freq) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = float(position) * inv_freq[size_t(i)];  // float32, as transformers does
    const float c = std::cos(angle), s = std::sin(angle);
    const float a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float gelu_tanh(float x) {
  constexpr float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

}  // namespace fp4llm::cpu
