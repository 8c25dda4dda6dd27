// UTF-8 helpers with the exact semantics Hugging Face tokenizers (Rust) relies on: validation,
// and lossy decoding that replaces each maximal ill-formed subpart with one U+FFFD, as Rust's
// String::from_utf8_lossy does.
#pragma once

#include "util/utf8_encode.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace fp4llm::tok {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Byte offset of the first ill-formed sequence, or s.size() when s is valid UTF-8.
size_t first_invalid_utf8(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return first_invalid_utf8(s) == s.size(); }

// Length in bytes of the character whose lead byte is `lead` (input known to be valid).
inline size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Decodes the character at s[i] (valid UTF-8) and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
// Decodes the last character of s (valid UTF-8, non-empty); `length` gets its byte count.
char32_t last_code_point(std::string_view s, size_t& length);
using fp4llm::append_utf8;

// Appends `bytes` to `out`, replacing ill-formed parts with U+FFFD like from_utf8_lossy.
void append_utf8_lossy(std::string& out, std::string_view bytes);

// Number of bytes at the end of `bytes` that begin a well-formed sequence not yet complete
// (0 to 3). Lossy decoding of everything before them can never change, whatever follows.
size_t incomplete_utf8_tail(std::string_view bytes);

}  // namespace fp4llm::tok
