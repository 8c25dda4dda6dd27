// compressed-tensors NVFP4, format nvfp4-pack-quantized (FORMATS.md, from the compressed-tensors
// and vLLM sources): <m>.weight_packed U8 [out, in/2], <m>.weight_scale F8_E4M3 [out, in/16],
// <m>.weight_global_scale F32 [1], optional <m>.input_global_scale F32 [1]. Its global scales are
// the RECIPROCAL of ModelOpt's (weight_global_scale = 448 * 6 / amax, dequantize
// w = e2m1 * weight_scale / weight_global_scale), so the canonical global scale is 1 / that.
#include <cmath>
#include <set>

#include "io/checkpoint_readers.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fp4llm {

namespace {

float reciprocal_scale(const TensorView& t) {
  const float v = read_scalar(t);
  if (!(std::isfinite(v) && v > 0)) fail("{}: global scale {} is not positive", t.describe(), v);
  return 1.0f / v;
}
}  // namespace

void read_compressed_tensors_nvfp4(const TensorStore& store, Checkpoint& out) {
  std::set<std::string> used;
  for (const auto& [name, t] : store.tensors()) {
    std::string module;
    if (!strip_suffix(name, ".weight_packed", module)) continue;
    const TensorView* scale = store.find(module + ".weight_scale");
    const TensorView* global = store.find(module + ".weight_global_scale");
    if (!scale || !global)
      fail("{}: packed NVFP4 weight without {}.weight_scale and .weight_global_scale",
           t.describe(), module);
    QuantizedLinear q = make_quantized_linear(t, *scale, reciprocal_scale(*global));
    used.insert({name, scale->name, global->name});
    if (const TensorView* in = store.find(module + ".input_global_scale")) {
      q.input_scale = reciprocal_scale(*in);
      used.insert(in->name);
    }
    if (const TensorView* shape = store.find(module + ".weight_shape")) {
      used.insert(shape->name);  // informational; the packed tensor already fixes the shape
    }
    out.weights.linears.emplace(module, std::move(q));
  }
  for (const auto& [name, t] : store.tensors()) {
    if (used.count(name)) continue;
    std::string stem;
    if (strip_suffix(name, ".k_scale", stem)) {
      add_kv_scale(stem, true, t, out);
    } else if (strip_suffix(name, ".v_scale", stem)) {
      add_kv_scale(stem, false, t, out);
    } else if (strip_suffix(name, ".weight_scale", stem) ||
               strip_suffix(name, ".weight_global_scale", stem) ||
               strip_suffix(name, ".input_global_scale", stem)) {
      fail("{}: quantization scale without {}.weight_packed", t.describe(), stem);
    } else if (t.dtype == DType::F8_E4M3 || t.dtype == DType::U8) {
      fail("{}: FP8/U8 tensor that is not part of an NVFP4 linear", t.describe());
    } else {
      out.weights.tensors.emplace(name, t);
    }
  }
}

}  // namespace fp4llm
