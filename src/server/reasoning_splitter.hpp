// Separates a reasoning model's thinking from its answer (Qwen3: "<think>...</think>answer").
// Text after an opening <think> (at the start of the output, or left open by the prompt) is
// reasoning until </think>; everything else is content. Works on streamed text: a tag split
// across pieces is held back until it is complete.
#pragma once

#include <string>
#include <string_view>

namespace fp4llm::server {

class ReasoningSplitter {
 public:
  // `enabled` false: everything is content. `opens_in_reasoning`: the prompt ended with <think>.
  ReasoningSplitter(bool enabled, bool opens_in_reasoning);

  struct Delta {
    std::string reasoning, content;
  };
  Delta push(std::string_view text);
  Delta flush();  // the end of the output: whatever is held back

 private:
  enum class State { Start, Reasoning, Content };
  void emit(std::string_view text, Delta& d) const;
  State state_;
  std::string held_;
};

}  // namespace fp4llm::server
