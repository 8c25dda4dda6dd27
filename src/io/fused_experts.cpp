#include "io/fused_experts.hpp"

#include <fmt/format.h>

#include "formats/dtype.hpp"
#include "util/error.hpp"

namespace fp4llm {

namespace {

// Rows [first, first + rows) of expert e of a [E, R, C] tensor, as `name` [rows, C].
TensorView expert_rows(const TensorView& t, int64_t e, int64_t first, int64_t rows, std::string name) {
  const int64_t cols = t.shape[2];
  const size_t row_bytes = size_t(cols) * dtype_size(t.dtype);
  const size_t offset = size_t(e * t.shape[1] + first) * row_bytes;
  return {std::move(name), t.dtype, {rows, cols}, t.data.slice(offset, size_t(rows) * row_bytes), t.file};
}

}  // namespace

std::vector<TensorView> unfuse_experts(const TensorView& t) {
  const bool gate_up = t.name.ends_with(".mlp.experts.gate_up_proj");
  const bool down = t.name.ends_with(".mlp.experts.down_proj");
  if (!gate_up && !down) return {t};
  if (t.shape.size() != 3) fail("{}: fused expert weights must be 3-D [experts, out, in]", t.describe());
  const std::string experts = t.name.substr(0, t.name.rfind('.') + 1);  // "...mlp.experts."
  std::vector<TensorView> out;
  if (down) {
    for (int64_t e = 0; e < t.shape[0]; ++e)
      out.push_back(expert_rows(t, e, 0, t.shape[1], fmt::format("{}{}.down_proj.weight", experts, e)));
    return out;
  }
  // transformers' Qwen3MoeExperts: gate, up = linear(x, gate_up_proj[e]).chunk(2, dim=-1), so
  // the first I rows are gate_proj and the next I rows up_proj.
  if (t.shape[1] % 2 != 0) fail("{}: gate_up_proj needs an even output dimension (gate then up)", t.describe());
  const int64_t inter = t.shape[1] / 2;
  for (int64_t e = 0; e < t.shape[0]; ++e) {
    out.push_back(expert_rows(t, e, 0, inter, fmt::format("{}{}.gate_proj.weight", experts, e)));
    out.push_back(expert_rows(t, e, inter, inter, fmt::format("{}{}.up_proj.weight", experts, e)));
  }
  return out;
}

}  // namespace fp4llm
