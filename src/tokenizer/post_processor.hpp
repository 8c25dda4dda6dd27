// tokenizer.json "post_processor" for a single sequence: the special tokens wrapped around the
// encoded text when add_special_tokens is on (Gemma's <bos>). Supported: TemplateProcessing,
// ByteLevel (ids unchanged), RobertaProcessing, BertProcessing and Sequence of those.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace fp4llm::tok {

class PostProcessor {
 public:
  // Adds nothing for a JSON null; throws naming the component for anything unsupported.
  static PostProcessor from_json(const nlohmann::json& j);

  // Ids added before and after the sequence.
  const std::vector<int32_t>& prefix() const { return prefix_; }
  const std::vector<int32_t>& suffix() const { return suffix_; }
  void prepend(int32_t id) { prefix_.insert(prefix_.begin(), id); }

 private:
  void add(const nlohmann::json& j);
  std::vector<int32_t> prefix_, suffix_;
};

}  // namespace fp4llm::tok
