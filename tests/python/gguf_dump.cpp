// Test tool: every tensor of a GGUF file dequantized by fp4llm, as F32 safetensors with the
// GGUF dims reversed (row-major [rows, cols]), for comparison with the `gguf` package.
//   fp4llm_gguf_dump FILE.gguf OUT.safetensors
#include <fmt/format.h>

#include <cstring>

#include "io/gguf_dequant.hpp"
#include "io/gguf_file.hpp"
#include "io/safetensors_writer.hpp"

using namespace fp4llm;

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: {} FILE.gguf OUT.safetensors\n", argv[0]);
    return 2;
  }
  try {
    const GgufFile g = GgufFile::open(argv[1]);
    std::vector<TensorToWrite> out;
    for (const auto& [name, t] : g.tensors()) {
      const int64_t cols = t.dims[0], rows = t.numel() / cols;
      std::vector<uint8_t> bytes(size_t(t.numel()) * 4);
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        gguf_dequantize_row(t, r, row.data());
        std::memcpy(&bytes[size_t(r * cols) * 4], row.data(), size_t(cols) * 4);
      }
      std::vector<int64_t> shape(t.dims.rbegin(), t.dims.rend());
      out.push_back({name, DType::F32, shape, Bytes::owned(std::move(bytes))});
    }
    write_safetensors(argv[2], out);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
