// tokenizer.json "normalizer": rewrites each stretch of text between added tokens before it is
// pre-tokenized. Supported: NFC, NFD, NFKC, NFKD, Replace, Prepend, Strip and Sequence of those.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace fp4llm::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is valid UTF-8 and stays so.
  virtual void normalize(std::string& text) const = 0;
};

// nullptr for a JSON null; throws naming the component for anything unsupported.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);

}  // namespace fp4llm::tok
