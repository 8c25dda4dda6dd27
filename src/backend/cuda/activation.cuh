// The gated MLP activations, shared by the GEMV epilogue and the prefill activation kernel.
#pragma once

namespace fp4llm::cuda {

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

// GELU with the tanh approximation (Gemma's gelu_pytorch_tanh).
__device__ __forceinline__ float gelu_tanh(float g) {
  constexpr float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g)));
}

__device__ __forceinline__ float gated_value(float gate, float up, bool gelu) {
  return (gelu ? gelu_tanh(gate) : silu(gate)) * up;
}

}  // namespace fp4llm::cuda
