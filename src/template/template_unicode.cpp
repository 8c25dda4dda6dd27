#include "template/template_unicode.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace ut = unicode_tables;

namespace {

bool in_ranges(const CodeRange* ranges, size_t size, uint32_t cp) {
  const CodeRange* end = ranges + size;
  const CodeRange* it =
      std::upper_bound(ranges, end, cp, [](uint32_t c, const CodeRange& r) { return c < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

const char* find_mapping(const CaseMapping* map, size_t size, uint32_t cp) {
  const CaseMapping* end = map + size;
  const CaseMapping* it = std::lower_bound(
      map, end, cp, [](const CaseMapping& m, uint32_t c) { return m.code_point < c; });
  return (it != end && it->code_point == cp) ? it->utf8 : nullptr;
}

void append_mapped(std::string& out, const CaseMapping* map, size_t size, uint32_t cp) {
  if (const char* m = find_mapping(map, size, cp))
    out += m;
  else
    append_utf8(out, cp);
}

bool case_ignorable(uint32_t cp) {
  return in_ranges(ut::case_ignorable_ranges, ut::case_ignorable_ranges_size, cp);
}

// CPython lowers U+03A3 to final sigma when it ends a cased word (Unicode's Final_Sigma rule).
uint32_t lower_sigma(const std::vector<uint32_t>& cps, size_t i) {
  size_t j = i;
  while (j > 0 && case_ignorable(cps[j - 1])) --j;
  bool final_sigma = j > 0 && py_iscased(cps[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < cps.size() && case_ignorable(cps[k])) ++k;
    final_sigma = k == cps.size() || !py_iscased(cps[k]);
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

void append_lower(std::string& out, const std::vector<uint32_t>& cps, size_t i) {
  if (cps[i] == 0x3A3)
    append_utf8(out, lower_sigma(cps, i));
  else
    append_mapped(out, ut::lower_map, ut::lower_map_size, cps[i]);
}

void append_title(std::string& out, uint32_t cp) {
  if (const char* m = find_mapping(ut::title_map, ut::title_map_size, cp))
    out += m;
  else
    append_mapped(out, ut::upper_map, ut::upper_map_size, cp);
}

}  // namespace

void check_utf8(std::string_view text, std::string_view what) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > text.size()) fail("{} is not valid UTF-8 (byte {})", what, i);
    uint32_t cp = n == 1 ? c : (c & (0x7F >> n));
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc >> 6) != 2) fail("{} is not valid UTF-8 (byte {})", what, i + k);
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      fail("{} is not valid UTF-8 (byte {})", what, i);
    i += n;
  }
}

uint32_t next_code_point(std::string_view text, size_t& pos) {
  const auto c = static_cast<unsigned char>(text[pos]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
  uint32_t cp = n == 1 ? c : (c & (0x7F >> n));
  for (size_t k = 1; k < n && pos + k < text.size(); ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3F);
  pos += n;
  return cp;
}

std::vector<uint32_t> code_points(std::string_view text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) cps.push_back(next_code_point(text, pos));
  return cps;
}

std::string from_code_points(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) append_utf8(out, cps[i]);
  return out;
}

size_t code_point_count(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool py_isspace(uint32_t cp) { return in_ranges(ut::space_ranges, ut::space_ranges_size, cp); }
bool py_isprintable(uint32_t cp) {
  return !in_ranges(ut::unprintable_ranges, ut::unprintable_ranges_size, cp);
}
bool py_isdigit(uint32_t cp) { return in_ranges(ut::digit_ranges, ut::digit_ranges_size, cp); }
bool py_isalpha(uint32_t cp) { return in_ranges(ut::alpha_ranges, ut::alpha_ranges_size, cp); }
bool py_isalnum(uint32_t cp) { return in_ranges(ut::alnum_ranges, ut::alnum_ranges_size, cp); }
bool py_iscased(uint32_t cp) { return in_ranges(ut::cased_ranges, ut::cased_ranges_size, cp); }
bool py_islower_cp(uint32_t cp) {
  return in_ranges(ut::lowercase_ranges, ut::lowercase_ranges_size, cp);
}
bool py_isupper_cp(uint32_t cp) {
  return in_ranges(ut::uppercase_ranges, ut::uppercase_ranges_size, cp);
}

std::string py_lower(std::string_view text) {
  const std::vector<uint32_t> cps = code_points(text);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) append_lower(out, cps, i);
  return out;
}

std::string py_upper(std::string_view text) {
  std::string out;
  for (uint32_t cp : code_points(text)) append_mapped(out, ut::upper_map, ut::upper_map_size, cp);
  return out;
}

std::string py_title(std::string_view text) {
  const std::vector<uint32_t> cps = code_points(text);
  std::string out;
  bool previous_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (previous_cased)
      append_lower(out, cps, i);
    else
      append_title(out, cps[i]);
    previous_cased = py_iscased(cps[i]);
  }
  return out;
}

std::string py_capitalize(std::string_view text) {
  const std::vector<uint32_t> cps = code_points(text);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i == 0)
      append_title(out, cps[i]);
    else
      append_lower(out, cps, i);
  }
  return out;
}

std::string py_casefold(std::string_view text) {
  std::string out;
  for (uint32_t cp : code_points(text)) append_mapped(out, ut::casefold_map, ut::casefold_map_size, cp);
  return out;
}

std::string py_swapcase(std::string_view text) {
  const std::vector<uint32_t> cps = code_points(text);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (py_isupper_cp(cps[i]))
      append_lower(out, cps, i);
    else if (py_islower_cp(cps[i]))
      append_mapped(out, ut::upper_map, ut::upper_map_size, cps[i]);
    else
      append_utf8(out, cps[i]);
  }
  return out;
}

}  // namespace fp4llm::tmpl
