// Plain BF16/F16/F32 Hugging Face checkpoints: every projection is quantized to NVFP4 at load,
// with the same numerics as `fp4llm quantize`; other tensors stay as stored. Fused MoE expert
// tensors are read as the per-expert weights they hold.
#include "io/checkpoint_readers.hpp"
#include "io/fused_experts.hpp"
#include "io/linear_selection.hpp"
#include "util/progress_bar.hpp"

namespace fp4llm {

void read_plain(const TensorStore& store, const LoadOptions& options, Checkpoint& out) {
  std::vector<std::string> exclude = default_exclude_modules();
  exclude.insert(exclude.end(), options.exclude.begin(), options.exclude.end());
  std::vector<std::pair<std::string, TensorView>> to_quantize;
  uint64_t quantize_bytes = 0;
  for (const auto& [_, stored] : store.tensors()) {
    for (const TensorView& t : unfuse_experts(stored)) {  // fused MoE experts: one view per expert
      if (auto module = quantizable_linear_module(t, exclude); module && !options.keep_16bit) {
        to_quantize.emplace_back(*module, t);
        quantize_bytes += t.data.size();
      } else {
        out.weights.tensors.emplace(t.name, t);
      }
    }
  }
  ProgressBar bar("quantizing to NVFP4", quantize_bytes);
  if (!options.progress) bar.disable();
  for (const auto& [module, t] : to_quantize) {
    out.weights.linears.emplace(module, quantize_linear(t, options.scale_rule));
    bar.advance(t.data.size());
  }
}

}  // namespace fp4llm
