#include "tokenizer/utf8.hpp"

namespace fp4llm::tok {

namespace {

// Bytes of a well-formed sequence led by `lead` (Unicode Table 3-7), 0 for a byte that can
// never start one. `lo`/`hi` bound the second byte, which is narrower for E0, ED, F0 and F4.
struct LeadInfo {
  int length;
  unsigned char lo, hi;
};

LeadInfo lead_info(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from s[i] form a well-formed prefix of a sequence (at most its full length);
// `complete` tells whether it is a whole character.
size_t valid_prefix(std::string_view s, size_t i, bool& complete) {
  const LeadInfo info = lead_info(static_cast<unsigned char>(s[i]));
  complete = false;
  if (info.length == 0) return 0;
  size_t n = 1;
  for (; n < size_t(info.length); ++n) {
    if (i + n >= s.size()) return n;
    const auto c = static_cast<unsigned char>(s[i + n]);
    const unsigned char lo = n == 1 ? info.lo : 0x80, hi = n == 1 ? info.hi : 0xBF;
    if (c < lo || c > hi) return n;
  }
  complete = true;
  return n;
}

}  // namespace

size_t first_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete = false;
    const size_t n = valid_prefix(s, i, complete);
    if (!complete) return i;
    i += n;
  }
  return s.size();
}

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const size_t n = utf8_length(b0);
  char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

char32_t last_code_point(std::string_view s, size_t& length) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  length = s.size() - start;
  size_t i = start;
  return next_code_point(s, i);
}

void append_utf8_lossy(std::string& out, std::string_view bytes) {
  size_t i = 0, run_start = 0;
  while (i < bytes.size()) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete = false;
    const size_t n = valid_prefix(bytes, i, complete);
    if (complete) {
      i += n;
      continue;
    }
    out.append(bytes.substr(run_start, i - run_start));
    out.append(kReplacementChar);
    i += n == 0 ? 1 : n;  // a maximal ill-formed subpart is replaced by one U+FFFD
    run_start = i;
  }
  out.append(bytes.substr(run_start));
}

size_t incomplete_utf8_tail(std::string_view bytes) {
  const size_t from = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t i = from; i < bytes.size(); ++i) {
    bool complete = false;
    const size_t n = valid_prefix(bytes, i, complete);
    if (!complete && n > 0 && i + n == bytes.size()) return n;
  }
  return 0;
}

}  // namespace fp4llm::tok
