// Which tensors of a plain (16-bit) checkpoint are linear weights that fp4llm quantizes to
// NVFP4, shared by quantize-at-load and `fp4llm quantize`.
#pragma once

#include "formats/nvfp4_scale_search.hpp"
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors_file.hpp"
#include "model/weights.hpp"

namespace fp4llm {

// Modules kept in 16 bits unless asked otherwise: the lm_head (as NVIDIA's NVFP4 exports ship
// it), MoE routers (mlp.gate) and the vision parts of multimodal checkpoints.
const std::vector<std::string>& default_exclude_modules();

// The module name when `t` is `<module>.weight` of a projection (`*_proj`) that is not excluded.
// Throws Error when such a projection cannot be NVFP4 (input dimension not a multiple of 16),
// rather than silently keeping it in 16 bits.
std::optional<std::string> quantizable_linear_module(const TensorView& t,
                                                     const std::vector<std::string>& exclude);

// `rule`: how block scales are chosen (ModelOpt's amax rule unless asked for the search).
QuantizedLinear quantize_linear(const TensorView& weight, Nvfp4ScaleRule rule = Nvfp4ScaleRule::Amax);

}  // namespace fp4llm
