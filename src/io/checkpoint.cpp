#include "io/checkpoint.hpp"

#include <cmath>

#include "formats/number_formats.hpp"
#include "io/checkpoint_readers.hpp"
#include "util/error.hpp"
#include "util/json_file.hpp"

namespace fp4llm {

namespace fs = std::filesystem;

Checkpoint load_checkpoint(const fs::path& dir, const LoadOptions& options) {
  Checkpoint ck;
  ck.dir = dir;
  if (fs::is_regular_file(dir) && dir.extension() == ".gguf") {
    ck.scheme.format = CheckpointFormat::Gguf;
    read_gguf(dir, options, ck);
    return ck;
  }
  if (!fs::is_directory(dir)) fail("{} is not a model folder", dir.string());
  if (!fs::exists(dir / "config.json")) fail("{}: config.json is missing", dir.string());
  ck.config = read_json_file(dir / "config.json");
  ck.scheme = detect_quant_scheme(dir, ck.config);
  const TensorStore store = TensorStore::open(dir);
  ck.file_bytes = store.total_bytes();
  switch (ck.scheme.format) {
    case CheckpointFormat::ModelOptNvfp4: read_modelopt_nvfp4(store, ck); break;
    case CheckpointFormat::CompressedTensorsNvfp4: read_compressed_tensors_nvfp4(store, ck); break;
    case CheckpointFormat::Plain: read_plain(store, options, ck); break;
    case CheckpointFormat::Gguf: break;  // handled above: a GGUF model is one file
  }
  complete_kv_scales(ck);
  return ck;
}

QuantizedLinear make_quantized_linear(const TensorView& packed, const TensorView& scales,
                                      float global_scale) {
  if (packed.dtype != DType::U8 || packed.shape.size() != 2)
    fail("{}: packed NVFP4 weights must be a 2-D U8 tensor", packed.describe());
  const int64_t out = packed.shape[0], in = packed.shape[1] * 2;
  if (in % kNvfp4BlockSize != 0)
    fail("{}: input dimension {} is not a multiple of {}", packed.describe(), in,
         kNvfp4BlockSize);
  if (scales.dtype != DType::F8_E4M3 || scales.shape != std::vector<int64_t>{out, in / kNvfp4BlockSize})
    fail("{}: expected F8_E4M3 [{}, {}] block scales for {}", scales.describe(), out,
         in / kNvfp4BlockSize, packed.name);
  if (!(std::isfinite(global_scale) && global_scale > 0))
    fail("global scale of {} is {}, expected a finite positive number", packed.name, global_scale);
  QuantizedLinear q;
  q.out_features = out;
  q.in_features = in;
  q.packed = packed.data;
  q.block_scales = scales.data;
  q.global_scale = global_scale;
  return q;
}

void add_kv_scale(const std::string& attention_module, bool is_k, const TensorView& t,
                  Checkpoint& out) {
  const float s = read_scalar(t);
  if (!(std::isfinite(s) && s > 0)) fail("{}: KV cache scale {} is not positive", t.describe(), s);
  // NaN marks "not given" until complete_kv_scales() fills it from the other one.
  auto [it, inserted] = out.kv_scales.try_emplace(attention_module, KvCacheScales{NAN, NAN});
  (is_k ? it->second.k : it->second.v) = s;
}

void complete_kv_scales(Checkpoint& out) {
  for (auto& [_, s] : out.kv_scales) {
    if (std::isnan(s.k)) s.k = s.v;
    if (std::isnan(s.v)) s.v = s.k;
  }
}

WeightBytes weight_bytes(const Checkpoint& checkpoint) {
  WeightBytes b;
  for (const auto& [_, q] : checkpoint.weights.linears) b.nvfp4 += q.bytes();
  for (const auto& [_, t] : checkpoint.weights.tensors) b.other += t.data.size();
  return b;
}

}  // namespace fp4llm
