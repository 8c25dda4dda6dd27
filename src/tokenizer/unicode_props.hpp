// The Unicode facts the tokenizer needs, answered by ICU so that no tables live in this repo.
#pragma once

#include <string>
#include <string_view>

namespace fp4llm::tok {

enum class NormalForm { NFC, NFD, NFKC, NFKD };

// Normalizes valid UTF-8 text. Hugging Face tokenizers normalizes with the tables of
// Unicode 9.0 (crate unicode-normalization-alignments), so characters assigned later are left
// untouched and act as boundaries: ICU's FilteredNormalizer2 over [:age=9.0:] reproduces that
// exactly (checked over every code point in docs/tokenizer.md).
void normalize_unicode(NormalForm form, std::string_view in, std::string& out);

// Rust regex `\s` (White_Space) and `\w` (Alphabetic, M, Nd, Pc, Join_Control): what
// Hugging Face uses for the single_word / lstrip / rstrip options of added tokens.
bool is_white_space(char32_t cp);
bool is_word_char(char32_t cp);

}  // namespace fp4llm::tok
