// Test tool: loads a model folder through fp4llm's checkpoint readers and writes what they
// produced to one safetensors file, for Python tests to compare with their numpy references:
//   <module>.dequant      F32 [out, in]  every NVFP4 linear, dequantized
//   <module>.global_scale F32 []         its canonical (ModelOpt-convention) global scale
//   <attn>.kv_scales      F32 [2]        k and v cache scales, when the checkpoint has them
//   <name>.value          F32            every floating-point tensor kept as stored, as float32
// Metadata "plain_tensors" lists the tensors kept as stored, comma-separated.
// MODEL_DIR may be a .gguf file. A third argument "mse" quantizes at load with the block-scale
// search instead of ModelOpt's amax rule.
#include <fmt/format.h>

#include <cstring>

#include "io/checkpoint.hpp"
#include "io/safetensors_writer.hpp"
#include "io/tensor_store.hpp"
#include "util/error.hpp"

using namespace fp4llm;

namespace {
Bytes floats(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return Bytes::owned(std::move(b));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    fmt::print(stderr, "usage: {} MODEL_DIR OUT.safetensors [amax|mse]\n", argv[0]);
    return 2;
  }
  try {
    LoadOptions options{{}, false};
    if (argc == 4 && std::string(argv[3]) == "mse") options.scale_rule = Nvfp4ScaleRule::Mse;
    const Checkpoint ck = load_checkpoint(argv[1], options);
    std::vector<TensorToWrite> out;
    for (const auto& [name, q] : ck.weights.linears) {
      std::vector<float> w(size_t(q.out_features * q.in_features));
      for (int64_t r = 0; r < q.out_features; ++r) q.dequantize_row(r, &w[size_t(r * q.in_features)]);
      out.push_back({name + ".dequant", DType::F32, {q.out_features, q.in_features}, floats(w)});
      out.push_back({name + ".global_scale", DType::F32, {}, floats({q.global_scale})});
    }
    for (const auto& [name, s] : ck.kv_scales)
      out.push_back({name + ".kv_scales", DType::F32, {2}, floats({s.k, s.v})});
    std::string plain;
    for (const auto& [name, t] : ck.weights.tensors) {
      plain += (plain.empty() ? "" : ",") + name;
      if (t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16)
        out.push_back({name + ".value", DType::F32, t.shape, floats(read_floats(t))});
    }
    write_safetensors(argv[2], out, {{"plain_tensors", plain}, {"format", std::string(format_name(ck.scheme.format))}});
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
