#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.hpp"

#include <pcre2.h>

#include "tokenizer/regex_unicode_additions.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm::tok {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
};

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread matching resources: a JIT stack large enough for long runs of one character
// class, and a match context pointing at it. Created on first use in each thread.
struct ThreadMatchState {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  ThreadMatchState() {
    stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (!stack || !context) fail("PCRE2: out of memory creating a match context");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

struct MatchData {
  pcre2_match_data* data;
  explicit MatchData(const pcre2_code* code)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (!data) fail("PCRE2: out of memory creating match data");
  }
  ~MatchData() { pcre2_match_data_free(data); }
};

// Oniguruma's \s is exactly Unicode White_Space; PCRE2's also takes U+180E (MONGOLIAN VOWEL
// SEPARATOR), so \s and \S are spelled out as that set.
constexpr std::string_view kWhiteSpaceItems =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

// Class items for the characters Oniguruma's Unicode puts in category `name` beyond PCRE2's.
std::string category_additions(std::string_view name) {
  std::string items;
  for (const auto& entry : regex_unicode_additions()) {
    if (entry.name != name) continue;
    for (const auto& [lo, hi] : entry.ranges)
      items += lo == hi ? fmt::format("\\x{{{:X}}}", uint32_t(lo))
                        : fmt::format("\\x{{{:X}}}-\\x{{{:X}}}", uint32_t(lo), uint32_t(hi));
  }
  return items;
}

// Rewrites the escapes whose meaning differs between Oniguruma (as Hugging Face builds it) and
// PCRE2: \s / \S, and \p{..} / \P{..} general categories, which get the characters Unicode
// assigned after PCRE2's tables. Everything else is passed through unchanged.
class PatternTranslator {
 public:
  explicit PatternTranslator(const std::string& pattern) : in_(pattern) {}

  std::string run() {
    for (size_t i = 0; i < in_.size(); ++i) {
      const char c = in_[i];
      if (c == '\\' && i + 1 < in_.size()) {
        i = escape(i);
        continue;
      }
      if (c == '[') ++class_depth_;
      if (c == ']' && class_depth_ > 0) --class_depth_;
      out_ += c;
    }
    return out_;
  }

 private:
  // Handles the escape at in_[i] (a backslash); returns the index of its last character.
  size_t escape(size_t i) {
    const char e = in_[i + 1];
    if (e == 's' || e == 'S') {
      emit_set(std::string(kWhiteSpaceItems), e == 'S', "\\S");
      return i + 1;
    }
    if (e != 'p' && e != 'P') {
      out_ += in_.substr(i, 2);
      return i + 1;
    }
    std::string name;
    size_t last = i + 2;
    if (last < in_.size() && in_[last] == '{') {
      last = in_.find('}', i + 3);
      if (last == std::string::npos) fail("tokenizer regex {:?}: unterminated \\p{{", in_);
      name = in_.substr(i + 3, last - i - 3);
    } else if (last < in_.size()) {
      name = std::string(1, in_[last]);
    }
    bool negated = e == 'P';
    if (name.starts_with('^')) {
      negated = !negated;
      name.erase(0, 1);
    }
    const std::string extra = category_additions(name);
    const std::string original = in_.substr(i, std::min(last, in_.size() - 1) - i + 1);
    if (extra.empty())
      out_ += original;
    else
      emit_set("\\p{" + name + "}" + extra, negated, original);
    return last;
  }

  // Writes a set of class items, negated if asked; inside a class only a positive set fits.
  void emit_set(const std::string& items, bool negated, std::string_view what) {
    if (class_depth_ > 0) {
      if (negated)
        fail("tokenizer regex {:?}: {} inside a character class is not supported", in_, what);
      out_ += items;
      return;
    }
    out_ += negated ? "[^" + items + "]" : "[" + items + "]";
  }

  const std::string& in_;
  std::string out_;
  int class_depth_ = 0;  // inside [...] (Oniguruma allows nested classes)
};

std::string translate_pattern(const std::string& pattern) {
  return PatternTranslator(pattern).run();
}

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern), code_(std::make_unique<Code>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  const std::string translated = translate_pattern(pattern);
  // Oniguruma's default (Ruby) syntax treats ^ and $ as line anchors: MULTILINE matches that.
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              options, &error, &offset, nullptr);
  if (!code_->code)
    fail("tokenizer regex {:?} does not compile with PCRE2 at offset {}: {}", pattern, offset,
         pcre2_message(error));
  code_->jit = pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (code_ && code_->code) pcre2_code_free(code_->code);
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  out.clear();
  MatchData match(code_->code);
  pcre2_match_context* context = thread_state().context;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    // The text was validated once by the caller; skip PCRE2's per-call UTF check.
    const int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), pos,
                                                PCRE2_NO_UTF_CHECK, match.data, context)
                              : pcre2_match(code_->code, subject, text.size(), pos,
                                            PCRE2_NO_UTF_CHECK, match.data, context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("tokenizer regex {:?}: matching failed: {}", pattern_, pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    const size_t begin = ovector[0], end = ovector[1];
    out.emplace_back(begin, end);
    if (end > begin) {
      pos = end;
    } else {
      if (end >= text.size()) break;
      pos = end + utf8_length(static_cast<unsigned char>(text[end]));
    }
  }
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  for (const char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace fp4llm::tok
