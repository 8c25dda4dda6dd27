// tokenizer.json "decoder": turns token strings back into text. Supported: ByteLevel, Replace,
// ByteFallback, Fuse, Strip and Sequence of those; without a decoder tokens are joined with
// spaces, as Hugging Face does. Each step mirrors Hugging Face's decode_chain.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "tokenizer/pattern.hpp"

namespace fp4llm::tok {

// One step of a decoder chain. Only the fields of its kind are used.
struct DecoderStep {
  enum class Kind {
    ByteLevel,
    Replace,
    ByteFallback,
    Fuse,
    Strip,
    JoinWithSpace,  // stands for "no decoder": tokens joined with single spaces
  };
  DecoderStep() = default;
  explicit DecoderStep(Kind k) : kind(k) {}

  Kind kind = Kind::Fuse;
  Pattern pattern;          // Replace
  std::string content;      // Replace: the replacement
  char32_t strip_char = 0;  // Strip
  size_t start = 0, stop = 0;
};

class DecoderStream;

class Decoder {
 public:
  static Decoder from_json(const nlohmann::json& j);

  std::string decode(std::vector<std::string> tokens) const;
  // An incremental decoder whose outputs concatenate to decode() of the same tokens.
  std::unique_ptr<DecoderStream> stream() const;

  const std::vector<DecoderStep>& steps() const { return steps_; }

 private:
  void add(const nlohmann::json& j);
  std::vector<DecoderStep> steps_;
};

// Batch semantics of one step on a list of token strings (exposed for the streaming side,
// which falls back to it when a step sees the whole text as one piece).
void apply_step(const DecoderStep& step, std::vector<std::string>& tokens);
// The byte a "<0xNN>" token stands for, as Hugging Face's ByteFallback reads it; -1 otherwise.
int byte_fallback_value(const std::string& token);

}  // namespace fp4llm::tok
