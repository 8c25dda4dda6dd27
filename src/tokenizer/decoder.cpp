#include "tokenizer/decoder.hpp"

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.hpp"
#include "tokenizer/decoder_stream.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm::tok {

namespace {

void apply_byte_level(std::vector<std::string>& tokens) {
  std::string bytes;
  for (const auto& t : tokens) append_byte_level_token(bytes, t);
  std::string text;
  append_utf8_lossy(text, bytes);
  tokens = {std::move(text)};
}

// Runs of <0xNN> tokens become their bytes when those form valid UTF-8, else one U+FFFD per byte.
void apply_byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string group;
  size_t group_size = 0;
  auto flush = [&] {
    if (group_size == 0) return;
    if (is_valid_utf8(group)) {
      out.push_back(group);
    } else {
      for (size_t k = 0; k < group_size; ++k) out.emplace_back(kReplacementChar);
    }
    group.clear();
    group_size = 0;
  };
  for (auto& t : tokens) {
    const int b = byte_fallback_value(t);
    if (b >= 0) {
      group += static_cast<char>(b);
      ++group_size;
      continue;
    }
    flush();
    out.push_back(std::move(t));
  }
  flush();
  tokens = std::move(out);
}

std::string strip_token(const std::string& token, const DecoderStep& s) {
  std::vector<size_t> starts;  // byte offset of each character
  for (size_t i = 0; i < token.size(); next_code_point(token, i)) starts.push_back(i);
  auto char_at = [&](size_t k) {
    size_t i = starts[k];
    return next_code_point(token, i);
  };
  size_t start_cut = 0;
  for (size_t k = 0; k < std::min(s.start, starts.size()) && char_at(k) == s.strip_char; ++k)
    start_cut = k + 1;
  size_t stop_cut = starts.size();
  for (size_t k = 0; k < std::min(s.stop, starts.size()); ++k) {
    const size_t index = starts.size() - k - 1;
    if (char_at(index) != s.strip_char) break;
    stop_cut = index;
  }
  if (stop_cut <= start_cut) return {};
  const size_t begin = starts[start_cut];
  const size_t end = stop_cut == starts.size() ? token.size() : starts[stop_cut];
  return token.substr(begin, end - begin);
}

char32_t single_char(const nlohmann::json& j, const char* key) {
  const std::string s = j.value(key, "");
  size_t i = 0;
  if (s.empty() || !is_valid_utf8(s)) fail("decoder Strip: '{}' must be one character", key);
  const char32_t cp = next_code_point(s, i);
  if (i != s.size()) fail("decoder Strip: '{}' must be one character", key);
  return cp;
}

}  // namespace

int byte_fallback_value(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
  // Rust's u8::from_str_radix accepts either case and a leading '+'.
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = token[i];
    if (i == 3 && c == '+') continue;
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

void apply_step(const DecoderStep& step, std::vector<std::string>& tokens) {
  using Kind = DecoderStep::Kind;
  switch (step.kind) {
    case Kind::ByteLevel:
      apply_byte_level(tokens);
      return;
    case Kind::Replace:
      for (auto& t : tokens) t = step.pattern.replace_all(t, step.content);
      return;
    case Kind::ByteFallback:
      apply_byte_fallback(tokens);
      return;
    case Kind::Strip:
      for (auto& t : tokens) t = strip_token(t, step);
      return;
    case Kind::Fuse:
    case Kind::JoinWithSpace: {
      const char* separator = step.kind == Kind::Fuse ? "" : " ";
      std::string all;
      for (size_t i = 0; i < tokens.size(); ++i) all += (i ? separator : "") + tokens[i];
      tokens = {std::move(all)};
      return;
    }
  }
}

Decoder Decoder::from_json(const nlohmann::json& j) {
  Decoder d;
  if (j.is_null())
    d.steps_.push_back(DecoderStep(DecoderStep::Kind::JoinWithSpace));
  else
    d.add(j);
  return d;
}

void Decoder::add(const nlohmann::json& j) {
  using Kind = DecoderStep::Kind;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& step : j.value("decoders", nlohmann::json::array())) add(step);
  } else if (type == "ByteLevel") {
    steps_.push_back(DecoderStep(Kind::ByteLevel));
  } else if (type == "Replace") {
    if (!j.contains("content") || !j["content"].is_string())
      fail("decoder Replace: missing string 'content'");
    DecoderStep step(Kind::Replace);
    step.pattern = Pattern::from_json(j.value("pattern", nlohmann::json()), "decoder Replace");
    step.content = j["content"].get<std::string>();
    steps_.push_back(std::move(step));
  } else if (type == "ByteFallback") {
    steps_.push_back(DecoderStep(Kind::ByteFallback));
  } else if (type == "Fuse") {
    steps_.push_back(DecoderStep(Kind::Fuse));
  } else if (type == "Strip") {
    DecoderStep step(Kind::Strip);
    step.strip_char = single_char(j, "content");
    step.start = j.value("start", size_t{0});
    step.stop = j.value("stop", size_t{0});
    steps_.push_back(std::move(step));
  } else {
    fail("tokenizer.json: decoder type '{}' is not supported (supported: ByteLevel, Replace, "
         "ByteFallback, Fuse, Strip, Sequence)",
         type);
  }
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  for (const auto& step : steps_) apply_step(step, tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::unique_ptr<DecoderStream> Decoder::stream() const {
  return std::make_unique<DecoderStream>(steps_);
}

}  // namespace fp4llm::tok
