// UTF-8 and the Unicode properties CPython's str methods use, so that strip(), lower(), title(),
// len() and slicing agree with Python on any text (strings are UTF-8 bytes here, code points
// in Python).
#pragma once

#include "util/utf8_encode.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fp4llm::tmpl {

struct CaseMapping {
  uint32_t code_point;
  const char* utf8;
};
struct CodeRange {
  uint32_t first, last;
};

// Throws Error when `text` is not valid UTF-8 (Python strings always are).
void check_utf8(std::string_view text, std::string_view what);
// Decodes one code point at `pos` (text is valid UTF-8) and advances pos.
uint32_t next_code_point(std::string_view text, size_t& pos);
using fp4llm::append_utf8;
std::vector<uint32_t> code_points(std::string_view text);
std::string from_code_points(const std::vector<uint32_t>& cps, size_t begin, size_t end);
size_t code_point_count(std::string_view text);
bool is_ascii(std::string_view text);

bool py_isspace(uint32_t cp);
bool py_isprintable(uint32_t cp);
bool py_isdigit(uint32_t cp);
bool py_isalpha(uint32_t cp);
bool py_isalnum(uint32_t cp);
bool py_iscased(uint32_t cp);
bool py_islower_cp(uint32_t cp);
bool py_isupper_cp(uint32_t cp);

std::string py_lower(std::string_view text);
std::string py_upper(std::string_view text);
std::string py_title(std::string_view text);       // str.title()
std::string py_capitalize(std::string_view text);  // str.capitalize()
std::string py_swapcase(std::string_view text);
std::string py_casefold(std::string_view text);

namespace unicode_tables {
extern const CaseMapping lower_map[];
extern const size_t lower_map_size;
extern const CaseMapping upper_map[];
extern const size_t upper_map_size;
extern const CaseMapping casefold_map[];
extern const size_t casefold_map_size;
extern const CaseMapping title_map[];
extern const size_t title_map_size;
extern const CodeRange cased_ranges[];
extern const size_t cased_ranges_size;
extern const CodeRange case_ignorable_ranges[];
extern const size_t case_ignorable_ranges_size;
extern const CodeRange space_ranges[];
extern const size_t space_ranges_size;
extern const CodeRange unprintable_ranges[];
extern const size_t unprintable_ranges_size;
extern const CodeRange lowercase_ranges[];
extern const size_t lowercase_ranges_size;
extern const CodeRange uppercase_ranges[];
extern const size_t uppercase_ranges_size;
extern const CodeRange digit_ranges[];
extern const size_t digit_ranges_size;
extern const CodeRange alpha_ranges[];
extern const size_t alpha_ranges_size;
extern const CodeRange alnum_ranges[];
extern const size_t alnum_ranges_size;
}  // namespace unicode_tables

}  // namespace fp4llm::tmpl
