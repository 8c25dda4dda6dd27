// libFuzzer target: arbitrary bytes as a .safetensors file. Every input must either parse into
// entries whose data lies inside the buffer, or throw fp4llm::Error; nothing else.
#include <cstdint>
#include <cstring>
#include <vector>

#include "io/safetensors_file.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A private copy sized exactly to the input, so ASan flags any read past its end.
  std::vector<uint8_t> copy(data, data + size);
  const fp4llm::Bytes file = fp4llm::Bytes::owned(std::move(copy));
  try {
    const auto f = fp4llm::SafetensorsFile::parse(file, "fuzz.safetensors");
    uint8_t acc = 0;
    for (const auto& [name, t] : f.tensors()) {
      if (t.data.size() == 0) continue;
      acc ^= t.data.data()[0] ^ t.data.data()[t.data.size() - 1];  // touch both ends
    }
    volatile uint8_t sink = acc;
    (void)sink;
  } catch (const fp4llm::Error&) {
  }
  return 0;
}
