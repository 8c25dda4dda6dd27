// libFuzzer target: arbitrary bytes as a GGUF file. Parsing must end in tensors whose data lies
// inside the buffer (dequantizing their first row reads only that), or in fp4llm::Error.
#include <cstdint>
#include <vector>

#include "io/gguf_dequant.hpp"
#include "io/gguf_file.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> copy(data, data + size);
  const fp4llm::Bytes file = fp4llm::Bytes::owned(std::move(copy));
  try {
    const auto g = fp4llm::GgufFile::parse(file, "fuzz.gguf");
    for (const auto& [name, t] : g.tensors()) {
      if (t.dims[0] > (1 << 16)) continue;
      std::vector<float> row(static_cast<size_t>(t.dims[0]));
      fp4llm::gguf_dequantize_row(t, 0, row.data());
    }
  } catch (const fp4llm::Error&) {
  }
  return 0;
}
