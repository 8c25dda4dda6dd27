// Characters a newer Unicode version (the one Hugging Face's Oniguruma uses) adds to a general
// category, for patterns compiled by an older PCRE2. Generated: gen_regex_unicode_additions.py.
#pragma once

#include <string_view>
#include <utility>
#include <vector>

namespace fp4llm::tok {

struct CategoryAdditions {
  std::string_view name;  // "L", "Lu", "N", ...
  std::vector<std::pair<char32_t, char32_t>> ranges;
};

const std::vector<CategoryAdditions>& regex_unicode_additions();

}  // namespace fp4llm::tok
