#include "tokenizer/pre_tokenizer.hpp"

#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "tokenizer/byte_level.hpp"
#include "tokenizer/pattern.hpp"
#include "util/error.hpp"

namespace fp4llm::tok {

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& name) {
  if (name == "Removed") return Behavior::Removed;
  if (name == "Isolated") return Behavior::Isolated;
  if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::MergedWithNext;
  if (name == "Contiguous") return Behavior::Contiguous;
  fail("pre_tokenizer Split: behavior '{}' is not supported", name);
}

struct Piece {
  uint32_t begin, end;
  bool is_match;
};

// The text cut into alternating matched / unmatched pieces that cover it, as Hugging Face's
// Pattern::find_matches returns them (flags flipped when `invert`).
void cover_with_matches(const Pattern& pattern, std::string_view text, uint32_t base, bool invert,
                        std::vector<std::pair<size_t, size_t>>& scratch,
                        std::vector<Piece>& pieces) {
  pieces.clear();
  pattern.find_all(text, scratch);
  size_t prev = 0;
  for (const auto& [begin, end] : scratch) {
    if (begin != prev) pieces.push_back({uint32_t(base + prev), uint32_t(base + begin), invert});
    pieces.push_back({uint32_t(base + begin), uint32_t(base + end), !invert});
    prev = end;
  }
  if (prev != text.size())
    pieces.push_back({uint32_t(base + prev), uint32_t(base + text.size()), invert});
}

// Applies a SplitDelimiterBehavior to covering pieces, mirroring Hugging Face's folds: a match
// joins its neighbour only when the piece before (or after) it is not itself a match.
void apply_behavior(Behavior behavior, const std::vector<Piece>& pieces, std::vector<Span>& out) {
  auto emit = [&out](uint32_t b, uint32_t e) {
    if (e > b) out.push_back({b, e});
  };
  switch (behavior) {
    case Behavior::Isolated:
      for (const Piece& p : pieces) emit(p.begin, p.end);
      return;
    case Behavior::Removed:
      for (const Piece& p : pieces)
        if (!p.is_match) emit(p.begin, p.end);
      return;
    case Behavior::MergedWithPrevious:
    case Behavior::Contiguous: {
      std::vector<Span> merged;
      bool previous_match = false;
      for (const Piece& p : pieces) {
        const bool join = behavior == Behavior::MergedWithPrevious
                              ? (p.is_match && !previous_match)
                              : (p.is_match == previous_match);
        if (join && !merged.empty())
          merged.back().end = p.end;
        else
          merged.push_back({p.begin, p.end});
        previous_match = p.is_match;
      }
      for (const Span& s : merged) emit(s.begin, s.end);
      return;
    }
    case Behavior::MergedWithNext: {
      std::vector<Span> merged;  // built right to left
      bool previous_match = false;
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty())
          merged.back().begin = it->begin;
        else
          merged.push_back({it->begin, it->end});
        previous_match = it->is_match;
      }
      for (auto it = merged.rbegin(); it != merged.rend(); ++it) emit(it->begin, it->end);
      return;
    }
  }
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}

  void apply(PreTokens& words) const override {
    std::vector<Span> out;
    out.reserve(words.spans.size() * 2);
    std::vector<std::pair<size_t, size_t>> scratch;
    std::vector<Piece> pieces;
    const std::string_view text = words.text;
    for (const Span& s : words.spans) {
      cover_with_matches(pattern_, text.substr(s.begin, s.end - s.begin), s.begin, invert_,
                         scratch, pieces);
      apply_behavior(behavior_, pieces, out);
    }
    words.spans.swap(out);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's word pattern, which ByteLevel applies itself when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) {
      nlohmann::json pattern = {{"Regex", kGpt2Pattern}};
      split_ = std::make_unique<SplitPreTokenizer>(
          Pattern::from_json(pattern, "pre_tokenizer ByteLevel"), Behavior::Isolated, false);
    }
  }

  void apply(PreTokens& words) const override {
    if (add_prefix_space_) prepend_spaces(words);
    if (split_) split_->apply(words);
    map_bytes(words);
  }

 private:
  // Every word not already starting with a space gets one, as Hugging Face does per split.
  static void prepend_spaces(PreTokens& words) {
    PreTokens out;
    out.text.reserve(words.text.size() + words.spans.size());
    for (const Span& s : words.spans) {
      const uint32_t begin = uint32_t(out.text.size());
      if (words.text[s.begin] != ' ') out.text += ' ';
      out.text.append(words.text, s.begin, s.end - s.begin);
      out.spans.push_back({begin, uint32_t(out.text.size())});
    }
    words = std::move(out);
  }

  static void map_bytes(PreTokens& words) {
    const auto& chars = byte_level_chars();
    std::string mapped;
    mapped.reserve(words.text.size() * 2);
    for (Span& s : words.spans) {
      const uint32_t begin = uint32_t(mapped.size());
      for (uint32_t i = s.begin; i < s.end; ++i)
        mapped += chars[static_cast<unsigned char>(words.text[i])];
      s = {begin, uint32_t(mapped.size())};
    }
    words.text.swap(mapped);
  }

  bool add_prefix_space_;
  std::unique_ptr<SplitPreTokenizer> split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void apply(PreTokens& words) const override {
    for (const auto& step : steps_) step->apply(words);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Split") {
    if (!j.contains("behavior") || !j["behavior"].is_string())
      fail("pre_tokenizer Split: missing 'behavior'");
    return std::make_unique<SplitPreTokenizer>(
        Pattern::from_json(j.value("pattern", nlohmann::json()), "pre_tokenizer Split"),
        parse_behavior(j["behavior"].get<std::string>()), j.value("invert", false));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(j.value("add_prefix_space", true),
                                                   j.value("use_regex", true));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& step : j.value("pretokenizers", nlohmann::json::array())) {
      auto p = make_pre_tokenizer(step);
      if (p) steps.push_back(std::move(p));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  fail("tokenizer.json: pre_tokenizer type '{}' is not supported (supported: Split, ByteLevel, "
       "Sequence)",
       type);
}

}  // namespace fp4llm::tok
