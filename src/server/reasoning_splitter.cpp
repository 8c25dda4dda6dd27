#include "server/reasoning_splitter.hpp"

#include <algorithm>

namespace fp4llm::server {

namespace {
constexpr std::string_view kOpen = "<think>", kClose = "</think>";

// Length of the longest tail of `text` that is a proper prefix of `tag`.
size_t partial_tag(std::string_view text, std::string_view tag) {
  for (size_t n = std::min(tag.size() - 1, text.size()); n > 0; --n)
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  return 0;
}
}  // namespace

ReasoningSplitter::ReasoningSplitter(bool enabled, bool opens_in_reasoning)
    : state_(!enabled ? State::Content : opens_in_reasoning ? State::Reasoning : State::Start) {}

void ReasoningSplitter::emit(std::string_view text, Delta& d) const {
  (state_ == State::Reasoning ? d.reasoning : d.content) += text;
}

ReasoningSplitter::Delta ReasoningSplitter::push(std::string_view text) {
  Delta d;
  held_ += text;
  if (state_ == State::Start) {
    const size_t first = held_.find_first_not_of(" \n");
    if (first == std::string::npos) return d;  // only whitespace so far: undecided
    const std::string_view rest = std::string_view(held_).substr(first);
    if (rest.size() < kOpen.size() && kOpen.starts_with(rest)) return d;  // maybe "<thi..."
    if (rest.starts_with(kOpen)) {
      state_ = State::Reasoning;
      held_ = std::string(rest.substr(kOpen.size()));
    } else {
      state_ = State::Content;
    }
  }
  if (state_ == State::Reasoning) {
    const size_t close = held_.find(kClose);
    if (close == std::string::npos) {
      const size_t keep = partial_tag(held_, kClose);
      emit(std::string_view(held_).substr(0, held_.size() - keep), d);
      held_.erase(0, held_.size() - keep);
      return d;
    }
    emit(std::string_view(held_).substr(0, close), d);
    held_.erase(0, close + kClose.size());
    state_ = State::Content;
  }
  emit(held_, d);
  held_.clear();
  return d;
}

ReasoningSplitter::Delta ReasoningSplitter::flush() {
  Delta d;
  if (state_ == State::Start) state_ = State::Content;
  emit(held_, d);
  held_.clear();
  return d;
}

}  // namespace fp4llm::server
