#include "tokenizer/normalizer.hpp"

#include <nlohmann/json.hpp>
#include <vector>

#include "tokenizer/pattern.hpp"
#include "tokenizer/unicode_props.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm::tok {

namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override {
    std::string out;
    normalize_unicode(form_, text, out);
    text.swap(out);
  }

 private:
  NormalForm form_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    text = pattern_.replace_all(text, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);  // Hugging Face leaves empty text alone
  }

 private:
  std::string prefix_;
};

// Removes White_Space characters at either end, as Rust's trim_start / trim_end.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t end = text.size();
    while (right_ && end > 0) {
      size_t len = 0;
      if (!is_white_space(last_code_point(std::string_view(text).substr(0, end), len))) break;
      end -= len;
    }
    size_t begin = 0;
    while (left_ && begin < end) {
      size_t next = begin;
      if (!is_white_space(next_code_point(text, next))) break;
      begin = next;
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

std::string string_field(const nlohmann::json& j, const char* key, std::string_view owner) {
  if (!j.contains(key) || !j[key].is_string()) fail("{}: missing string field '{}'", owner, key);
  return j[key].get<std::string>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(
        Pattern::from_json(j.value("pattern", nlohmann::json()), "normalizer Replace"),
        string_field(j, "content", "normalizer Replace"));
  if (type == "Prepend")
    return std::make_unique<PrependNormalizer>(string_field(j, "prepend", "normalizer Prepend"));
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(j.value("strip_left", false),
                                             j.value("strip_right", false));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& step : j.value("normalizers", nlohmann::json::array())) {
      auto n = make_normalizer(step);
      if (n) steps.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  fail("tokenizer.json: normalizer type '{}' is not supported (supported: NFC, NFD, NFKC, "
       "NFKD, Replace, Prepend, Strip, Sequence)",
       type);
}

}  // namespace fp4llm::tok
