// The arithmetic of the CPU reference backend: float32 throughout, weights dequantized block by
// block inside the matrix products (never a full 16-bit copy of a weight matrix).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/safetensors_file.hpp"
#include "model/model_weights.hpp"
#include "model/weights.hpp"

namespace fp4llm::cpu {

// y[m, :] = x[m, :] W^T for m < rows; x is [rows, in], y is [rows, out].
void linear(const QuantizedLinear& w, const float* x, int64_t rows, float* y);
// Same with a 16/32-bit weight matrix [out, in] (lm_head, tied embeddings).
void linear_dense(const TensorView& w, const float* x, int64_t rows, float* y);
// Either of the two, as the weight holds.
void linear(const LinearWeight& w, const float* x, int64_t rows, float* y);

// x[0, n) rounded to BF16, as the GPU holds activations where they enter a product.
std::vector<float> bf16_rounded(const float* x, int64_t n);

// The same product with both operands in FP8 E4M3, as an FP8 tensor-core GEMM would take them
// (the prefill option `fp8_prefill`): each weight row scaled by 6 x its largest block scale x the
// global scale / 448 (the bound of its values, read from the scales alone), each token (rounded
// to BF16 first, as the GPU holds activations) by e4m3_token_scale of its largest |x| (about
// amax / 448, on a grid of eighth powers of two); products summed in float32, both scales
// applied to the sum.
void linear_fp8(const QuantizedLinear& w, const float* x, int64_t rows, float* y);
// The per-row scale above, for row `row` of `w`.
float fp8_row_scale(const QuantizedLinear& w, int64_t row);

enum class NormStyle { Weight, OnePlusWeight };  // Qwen3: w * n(x); Gemma3: (1 + w) * n(x)
void rms_norm(float* x, int64_t n, std::span<const float> w, double eps, NormStyle style);

// Rotate-half RoPE on one head vector of size head_dim at `position`.
void apply_rope(float* x, int64_t head_dim, int64_t position, std::span<const float> inv_freq);
std::vector<float> rope_inv_freq(int64_t head_dim, double theta, double linear_factor);

float silu(float x);
float gelu_tanh(float x);

}  // namespace fp4llm::cpu
