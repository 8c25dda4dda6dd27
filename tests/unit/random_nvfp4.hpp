// Random NVFP4 matrices for tests: every E2M1 code, block scales over a wide E4M3 range
// (subnormals included, never NaN), a random global scale.
#pragma once

#include <random>
#include <vector>

#include "model/weights.hpp"

namespace fp4llm::test_support {

inline QuantizedLinear random_nvfp4(int64_t out, int64_t in, std::mt19937& rng) {
  QuantizedLinear q;
  q.out_features = out;
  q.in_features = in;
  std::uniform_int_distribution<int> byte(0, 255), scale(0x01, 0x5F);
  std::vector<uint8_t> packed(static_cast<size_t>(out * in / 2)), scales(static_cast<size_t>(out * in / 16));
  for (auto& b : packed) b = uint8_t(byte(rng));
  for (auto& s : scales) s = uint8_t(scale(rng));
  q.packed = Bytes::owned(std::move(packed));
  q.block_scales = Bytes::owned(std::move(scales));
  q.global_scale = std::uniform_real_distribution<float>(0.001f, 0.01f)(rng);
  return q;
}

}  // namespace fp4llm::test_support
