// NVIDIA ModelOpt NVFP4 (FORMATS.md): per quantized linear <m>: <m>.weight U8 [out, in/2],
// <m>.weight_scale F8_E4M3 [out, in/16], <m>.weight_scale_2 scalar (F32, some exports BF16),
// optional <m>.input_scale scalar; KV scales <attn>.k_proj.k_scale / <attn>.v_proj.v_scale.
#include <set>

#include "io/checkpoint_readers.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fp4llm {

void read_modelopt_nvfp4(const TensorStore& store, Checkpoint& out) {
  std::set<std::string> used;
  for (const auto& [name, t] : store.tensors()) {
    std::string module;
    if (!strip_suffix(name, ".weight", module) || t.dtype != DType::U8) continue;
    const TensorView* scale = store.find(module + ".weight_scale");
    const TensorView* scale2 = store.find(module + ".weight_scale_2");
    if (!scale || !scale2)
      fail("{}: packed NVFP4 weight without {}.weight_scale and .weight_scale_2", t.describe(),
           module);
    QuantizedLinear q = make_quantized_linear(t, *scale, read_scalar(*scale2));
    used.insert({name, scale->name, scale2->name});
    if (const TensorView* in = store.find(module + ".input_scale")) {
      q.input_scale = read_scalar(*in);
      used.insert(in->name);
    }
    out.weights.linears.emplace(module, std::move(q));
  }
  for (const auto& [name, t] : store.tensors()) {
    if (used.count(name)) continue;
    std::string stem;
    if (strip_suffix(name, ".k_proj.k_scale", stem) || strip_suffix(name, ".k_scale", stem)) {
      add_kv_scale(stem, true, t, out);
    } else if (strip_suffix(name, ".v_proj.v_scale", stem) || strip_suffix(name, ".v_scale", stem)) {
      add_kv_scale(stem, false, t, out);
    } else if (strip_suffix(name, ".weight_scale", stem) || strip_suffix(name, ".weight_scale_2", stem) ||
               strip_suffix(name, ".input_scale", stem)) {
      fail("{}: quantization scale without a packed U8 {}.weight", t.describe(), stem);
    } else if (t.dtype == DType::F8_E4M3 || t.dtype == DType::U8) {
      fail("{}: FP8/U8 tensor that is not part of an NVFP4 linear; fp4llm does not run "
           "mixed-precision (FP8) checkpoints",
           t.describe());
    } else {
      out.weights.tensors.emplace(name, t);
    }
  }
}

}  // namespace fp4llm
