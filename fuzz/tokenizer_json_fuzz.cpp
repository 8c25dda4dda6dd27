// libFuzzer target for the tokenizer.json loader: mutated small tokenizer files must load or
// fail with fp4llm::Error, never crash, hang or throw anything else; a file that loads must
// encode and decode without crashing. Seeds: fuzz/tokenizer_json_seeds/.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return 0;  // not JSON at all: the JSON parser's business, not ours
  }
  try {
    const auto t = fp4llm::Tokenizer::from_json(j, nullptr, nullptr);
    for (const char* s : {"hello world", "ab  ab\n\t<s>x", "caf\xC3\xA9 \xE4\xB8\xAD 12345", ""}) {
      const auto ids = t.encode(s);
      (void)t.decode(ids, false);
      fp4llm::StreamingDetokenizer stream(t);
      for (const int32_t id : ids) (void)stream.push(id);
      (void)stream.flush();
    }
  } catch (const fp4llm::Error&) {
  }
  return 0;
}
