#include "tokenizer/decoder_stream.hpp"

#include "tokenizer/byte_level.hpp"
#include "tokenizer/utf8.hpp"

namespace fp4llm::tok {

namespace {

// Holds everything and decodes it at the end: exact for any step, used where a step sees the
// whole text as one piece and streaming it would need more cleverness than it is worth.
class BufferAllStream final : public StepStream {
 public:
  explicit BufferAllStream(DecoderStep step) : step_(std::move(step)) {}
  void push(std::string piece, std::vector<std::string>&) override { text_ += piece; }
  void finish(std::vector<std::string>& out) override {
    std::vector<std::string> tokens{std::move(text_)};
    apply_step(step_, tokens);
    for (auto& t : tokens) out.push_back(std::move(t));
  }

 private:
  DecoderStep step_;
  std::string text_;
};

// Bytes are released up to the start of a character still waiting for its continuation bytes.
class ByteLevelStream final : public StepStream {
 public:
  void push(std::string piece, std::vector<std::string>& out) override {
    append_byte_level_token(bytes_, piece);
    const size_t settled = bytes_.size() - incomplete_utf8_tail(bytes_);
    std::string text;
    append_utf8_lossy(text, std::string_view(bytes_).substr(0, settled));
    bytes_.erase(0, settled);
    out.push_back(std::move(text));
  }
  void finish(std::vector<std::string>& out) override {
    std::string text;
    append_utf8_lossy(text, bytes_);
    bytes_.clear();
    out.push_back(std::move(text));
  }

 private:
  std::string bytes_;
};

// A run of <0xNN> tokens is judged as a whole, so it is held until a different token arrives.
class ByteFallbackStream final : public StepStream {
 public:
  void push(std::string piece, std::vector<std::string>& out) override {
    if (byte_fallback_value(piece) >= 0) {
      group_.push_back(std::move(piece));
      return;
    }
    flush(out);
    out.push_back(std::move(piece));
  }
  void finish(std::vector<std::string>& out) override { flush(out); }

 private:
  void flush(std::vector<std::string>& out) {
    if (group_.empty()) return;
    apply_step(DecoderStep(DecoderStep::Kind::ByteFallback), group_);
    for (auto& t : group_) out.push_back(std::move(t));
    group_.clear();
  }
  std::vector<std::string> group_;
};

class PerTokenStream final : public StepStream {
 public:
  explicit PerTokenStream(DecoderStep step) : step_(std::move(step)) {}
  void push(std::string piece, std::vector<std::string>& out) override {
    std::vector<std::string> one{std::move(piece)};
    apply_step(step_, one);
    out.push_back(std::move(one[0]));
  }
  void finish(std::vector<std::string>&) override {}

 private:
  DecoderStep step_;
};

// Literal Replace over a joined string: holds back a tail that may be the start of a match.
class JoinedReplaceStream final : public StepStream {
 public:
  explicit JoinedReplaceStream(DecoderStep step) : step_(std::move(step)) {}
  void push(std::string piece, std::vector<std::string>& out) override {
    pending_ += piece;
    const std::string& pattern = step_.pattern.literal();
    size_t last_end = 0;
    for (size_t pos = pending_.find(pattern); pos != std::string::npos;
         pos = pending_.find(pattern, pos + pattern.size()))
      last_end = pos + pattern.size();
    size_t hold = std::min(pattern.size() - 1, pending_.size() - last_end);
    while (hold > 0 && pending_.compare(pending_.size() - hold, hold, pattern, 0, hold) != 0)
      --hold;
    const size_t settled = pending_.size() - hold;
    out.push_back(step_.pattern.replace_all(std::string_view(pending_).substr(0, settled),
                                            step_.content));
    pending_.erase(0, settled);
  }
  void finish(std::vector<std::string>& out) override {
    out.push_back(step_.pattern.replace_all(pending_, step_.content));
    pending_.clear();
  }

 private:
  DecoderStep step_;
  std::string pending_;
};

// Strip over a joined string: drops up to `start` leading and `stop` trailing `content`
// characters of the whole text, holding back a trailing run of them until the end is known.
class JoinedStripStream final : public StepStream {
 public:
  explicit JoinedStripStream(DecoderStep step) : step_(std::move(step)) {
    append_utf8(content_, step_.strip_char);
  }
  void push(std::string piece, std::vector<std::string>& out) override {
    std::string_view rest = piece;
    while (!leading_done_ && !rest.empty()) {
      if (stripped_ < step_.start && rest.starts_with(content_)) {
        rest.remove_prefix(content_.size());
        ++stripped_;
      } else {
        leading_done_ = true;
      }
    }
    held_ += rest;
    if (step_.stop == 0) {
      out.push_back(std::move(held_));
      held_.clear();
      return;
    }
    size_t keep = held_.size();  // start of the trailing run of content characters
    while (keep >= content_.size() &&
           held_.compare(keep - content_.size(), content_.size(), content_) == 0)
      keep -= content_.size();
    out.push_back(held_.substr(0, keep));
    held_.erase(0, keep);
  }
  void finish(std::vector<std::string>& out) override {
    for (size_t k = 0; k < step_.stop && held_.size() >= content_.size(); ++k)
      held_.resize(held_.size() - content_.size());
    out.push_back(std::move(held_));
    held_.clear();
  }

 private:
  DecoderStep step_;
  std::string content_, held_;
  size_t stripped_ = 0;
  bool leading_done_ = false;
};

class JoinWithSpaceStream final : public StepStream {
 public:
  void push(std::string piece, std::vector<std::string>& out) override {
    out.push_back(first_ ? std::move(piece) : " " + piece);
    first_ = false;
  }
  void finish(std::vector<std::string>&) override {}

 private:
  bool first_ = true;
};

class PassThroughStream final : public StepStream {
 public:
  void push(std::string piece, std::vector<std::string>& out) override {
    out.push_back(std::move(piece));
  }
  void finish(std::vector<std::string>&) override {}
};

std::unique_ptr<StepStream> make_step_stream(const DecoderStep& step, bool joined) {
  using Kind = DecoderStep::Kind;
  switch (step.kind) {
    case Kind::Fuse:
      return std::make_unique<PassThroughStream>();
    case Kind::Replace:
      if (!joined) return std::make_unique<PerTokenStream>(step);
      if (step.pattern.is_literal() && !step.pattern.literal().empty())
        return std::make_unique<JoinedReplaceStream>(step);
      return std::make_unique<BufferAllStream>(step);
    case Kind::Strip:
      if (!joined) return std::make_unique<PerTokenStream>(step);
      return std::make_unique<JoinedStripStream>(step);
    case Kind::ByteLevel:
      if (!joined) return std::make_unique<ByteLevelStream>();
      return std::make_unique<BufferAllStream>(step);
    case Kind::ByteFallback:
      if (!joined) return std::make_unique<ByteFallbackStream>();
      return std::make_unique<BufferAllStream>(step);
    case Kind::JoinWithSpace:
      if (!joined) return std::make_unique<JoinWithSpaceStream>();
      return std::make_unique<BufferAllStream>(step);
  }
  return std::make_unique<BufferAllStream>(step);
}

// After these steps the rest of the chain sees the text as one string.
bool joins(const DecoderStep& step) {
  using Kind = DecoderStep::Kind;
  return step.kind == Kind::Fuse || step.kind == Kind::ByteLevel ||
         step.kind == Kind::JoinWithSpace;
}

}  // namespace

DecoderStream::DecoderStream(const std::vector<DecoderStep>& steps) {
  bool joined = false;
  for (const auto& step : steps) {
    steps_.push_back(make_step_stream(step, joined));
    joined = joined || joins(step);
  }
}

void DecoderStream::run_from(size_t step, std::vector<std::string> pieces, std::string& out) {
  for (; step < steps_.size(); ++step) {
    std::vector<std::string> next;
    for (auto& p : pieces) steps_[step]->push(std::move(p), next);
    pieces = std::move(next);
  }
  for (const auto& p : pieces) out += p;
}

std::string DecoderStream::push(std::string token) {
  std::string out;
  run_from(0, {std::move(token)}, out);
  return out;
}

std::string DecoderStream::finish() {
  std::string out;
  for (size_t i = 0; i < steps_.size(); ++i) {
    std::vector<std::string> pieces;
    steps_[i]->finish(pieces);
    run_from(i + 1, std::move(pieces), out);
  }
  return out;
}

}  // namespace fp4llm::tok
