// The canonical weight set every checkpoint reader produces. Nothing downstream knows which file
// format the weights came from.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "io/safetensors_file.hpp"
#include "util/bytes.hpp"

namespace fp4llm {

// One NVFP4 linear layer y = x W^T with W of shape [out_features, in_features].
struct QuantizedLinear {
  int64_t out_features = 0;
  int64_t in_features = 0;  // a multiple of kNvfp4BlockSize
  Bytes packed;             // [out, in/2] E2M1 codes, element 2i in the low nibble
  Bytes block_scales;       // [out, in/16] E4M3, row-major as on disk
  float global_scale = 1;   // ModelOpt's weight_scale_2: w = e2m1 * block_scale * global_scale
  std::optional<float> input_scale;  // activation scale of W4A4 exports; unused by fp4llm kernels

  uint64_t bytes() const { return packed.size() + block_scales.size() + sizeof(float); }
  // Dequantizes row `row` (in_features values) into `out`.
  void dequantize_row(int64_t row, float* out) const;
};

struct WeightSet {
  std::map<std::string, QuantizedLinear> linears;  // by module name, e.g. model.layers.0.mlp.up_proj
  std::map<std::string, TensorView> tensors;       // everything else, in its stored dtype
};

}  // namespace fp4llm
