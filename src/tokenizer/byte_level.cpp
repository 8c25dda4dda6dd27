#include "tokenizer/byte_level.hpp"

#include "tokenizer/utf8.hpp"

namespace fp4llm::tok {

namespace {

// Printable bytes stand for themselves; the others take code points 256, 257, ... in order.
std::array<char32_t, 256> byte_to_code_point() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    map[b] = printable ? char32_t(b) : next++;
  }
  return map;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> out;
    const auto map = byte_to_code_point();
    for (int b = 0; b < 256; ++b) append_utf8(out[b], map[b]);
    return out;
  }();
  return chars;
}

int byte_level_byte(char32_t cp) {
  static const std::array<int, 324> inverse = [] {
    std::array<int, 324> inv;
    inv.fill(-1);
    const auto map = byte_to_code_point();
    for (int b = 0; b < 256; ++b) inv[map[b]] = b;
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

void append_byte_level_token(std::string& bytes, std::string_view token) {
  const size_t mark = bytes.size();
  size_t i = 0;
  while (i < token.size()) {
    const int b = byte_level_byte(next_code_point(token, i));
    if (b < 0) {
      bytes.resize(mark);
      bytes += token;
      return;
    }
    bytes += static_cast<char>(b);
  }
}

}  // namespace fp4llm::tok
