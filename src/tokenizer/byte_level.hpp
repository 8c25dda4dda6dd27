// The GPT-2 byte-to-unicode alphabet used by ByteLevel pre-tokenizers and decoders: every byte
// is shown as one printable character so that BPE vocabularies never hold raw control bytes.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace fp4llm::tok {

// UTF-8 encoding of the character that stands for each byte.
const std::array<std::string, 256>& byte_level_chars();
// The byte a character stands for, or -1 when it is not in the alphabet.
int byte_level_byte(char32_t cp);
// Appends the bytes a token stands for. As in Hugging Face's ByteLevel decoder, a token holding
// a character outside the alphabet (an added token can) contributes its own UTF-8 bytes.
void append_byte_level_token(std::string& bytes, std::string_view token);

}  // namespace fp4llm::tok
