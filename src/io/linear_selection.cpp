#include "io/linear_selection.hpp"

#include "formats/nvfp4_quantize.hpp"
#include "formats/number_formats.hpp"
#include "io/quant_scheme.hpp"
#include "io/tensor_store.hpp"
#include "util/error.hpp"

namespace fp4llm {

const std::vector<std::string>& default_exclude_modules() {
  static const std::vector<std::string> patterns = {
      "lm_head", "*.lm_head", "*.mlp.gate", "*vision_tower*", "*multi_modal_projector*"};
  return patterns;
}

namespace {
bool is_float(DType t) { return t == DType::BF16 || t == DType::F16 || t == DType::F32; }
}  // namespace

std::optional<std::string> quantizable_linear_module(const TensorView& t,
                                                     const std::vector<std::string>& exclude) {
  if (!t.name.ends_with(".weight") || t.shape.size() != 2 || !is_float(t.dtype)) return {};
  const std::string module = t.name.substr(0, t.name.size() - 7);
  if (!module.ends_with("_proj") || module_excluded(module, exclude)) return {};
  if (t.shape[1] % kNvfp4BlockSize != 0)
    fail("{}: input dimension {} is not a multiple of {}, so it cannot be NVFP4; exclude the "
         "module to keep it in 16 bits",
         t.describe(), t.shape[1], kNvfp4BlockSize);
  return module;
}

QuantizedLinear quantize_linear(const TensorView& weight, Nvfp4ScaleRule rule) {
  const int64_t rows = weight.shape[0], cols = weight.shape[1];
  Nvfp4Matrix m;
  try {
    m = quantize_nvfp4(rows, cols,
                       [&](int64_t r, float* out) { read_floats(weight, r * cols, cols, out); }, rule);
  } catch (const Error& e) {
    fail("{}: {}", weight.describe(), e.what());
  }
  QuantizedLinear q;
  q.out_features = rows;
  q.in_features = cols;
  q.packed = Bytes::owned(std::move(m.packed));
  q.block_scales = Bytes::owned(std::move(m.block_scales));
  q.global_scale = m.global_scale;
  return q;
}

}  // namespace fp4llm
