// tokenizer.json "pre_tokenizer": cuts normalized text into words that BPE encodes one by one.
// Supported: Split (String or Regex pattern, every behavior, invert), ByteLevel and Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace fp4llm::tok {

struct Span {
  uint32_t begin, end;
};

// Words as byte ranges of one buffer: splitting only narrows ranges, and a step that rewrites
// the bytes (ByteLevel) builds a new buffer.
struct PreTokens {
  std::string text;
  std::vector<Span> spans;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(PreTokens& words) const = 0;
};

// nullptr for a JSON null; throws naming the component for anything unsupported.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j);

}  // namespace fp4llm::tok
