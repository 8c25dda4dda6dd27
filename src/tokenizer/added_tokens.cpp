#include "tokenizer/added_tokens.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tokenizer/bpe_model.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/unicode_props.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm::tok {

namespace {

AddedToken parse_token(const nlohmann::json& j, size_t index) {
  if (!j.is_object() || !j.contains("content") || !j["content"].is_string())
    fail("tokenizer.json added_tokens[{}]: expected an object with a string 'content'", index);
  AddedToken t;
  t.content = j["content"].get<std::string>();
  t.single_word = j.value("single_word", false);
  t.lstrip = j.value("lstrip", false);
  t.rstrip = j.value("rstrip", false);
  t.normalized = j.value("normalized", true);
  t.special = j.value("special", false);
  if (!is_valid_utf8(t.content))
    fail("tokenizer.json added_tokens[{}]: content is not valid UTF-8", index);
  return t;
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  return is_word_char(next_code_point(s, i));
}

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len = 0;
  return is_word_char(last_code_point(s, len));
}

// Where the run of White_Space that ends `s` begins.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t len = 0;
    if (!is_white_space(last_code_point(s.substr(0, end), len))) break;
    end -= len;
  }
  return end;
}

size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t next = i;
    if (!is_white_space(next_code_point(s, next))) break;
    i = next;
  }
  return i;
}

}  // namespace

int32_t AddedVocabulary::Trie::child(int32_t node, unsigned char c) const {
  const auto& kids = nodes_[size_t(node)].children;
  const auto it = std::lower_bound(kids.begin(), kids.end(), c,
                                   [](const auto& kid, unsigned char b) { return kid.first < b; });
  return it != kids.end() && it->first == c ? it->second : -1;
}

void AddedVocabulary::Trie::insert(std::string_view key, int32_t id) {
  int32_t node = 0;
  for (const char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    int32_t next = child(node, c);
    if (next < 0) {
      next = int32_t(nodes_.size());
      nodes_.emplace_back();
      auto& kids = nodes_[size_t(node)].children;
      kids.insert(std::upper_bound(kids.begin(), kids.end(), std::make_pair(c, int32_t(-1))),
                  {c, next});
    }
    node = next;
  }
  if (!key.empty()) first_[static_cast<unsigned char>(key[0])] = true;
  if (nodes_[size_t(node)].id < 0) nodes_[size_t(node)].id = id;  // the first pattern wins
}

std::pair<size_t, int32_t> AddedVocabulary::Trie::longest_prefix(std::string_view text) const {
  std::pair<size_t, int32_t> best{0, -1};
  int32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    node = child(node, static_cast<unsigned char>(text[i]));
    if (node < 0) break;
    if (nodes_[size_t(node)].id >= 0) best = {i + 1, nodes_[size_t(node)].id};
  }
  return best;
}

void AddedVocabulary::load(const nlohmann::json& added_tokens, const BpeModel& model,
                           const Normalizer* normalizer) {
  if (added_tokens.is_null()) return;
  if (!added_tokens.is_array()) fail("tokenizer.json added_tokens: expected an array");
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    AddedToken t = parse_token(added_tokens[i], i);
    if (t.content.empty()) continue;  // Hugging Face ignores empty tokens
    int32_t id = 0;
    if (const auto existing = token_to_id(t.content)) {
      id = *existing;
    } else if (const auto in_model = model.token_to_id(t.content)) {
      id = *in_model;
    } else {
      const int32_t vocab = model.vocab_entries();
      id = max_id_ < 0 ? vocab : (max_id_ >= vocab || vocab == 0) ? max_id_ + 1 : vocab;
    }
    const auto& j = added_tokens[i];
    if (j.contains("id") && (!j["id"].is_number_integer() || j["id"].get<int64_t>() != id))
      fail("tokenizer.json added_tokens[{}] {:?}: the file says id {}, but Hugging Face "
           "tokenizers assigns id {}; such a file is not supported",
           i, t.content, j["id"].dump(), id);
    t.id = id;
    if (t.special) special_[t.content] = true;
    by_content_[t.content] = id;
    max_id_ = std::max(max_id_, id);
    if (const auto it = by_id_.find(id); it != by_id_.end()) {
      tokens_[it->second] = t;
    } else {
      by_id_[id] = tokens_.size();
      tokens_.push_back(t);
    }
  }
  // Hugging Face lists special tokens before the others when it builds its matchers.
  for (const bool special_pass : {true, false}) {
    for (const AddedToken& t : tokens_) {
      if (special_.contains(t.content) != special_pass) continue;
      if (!t.normalized) {
        raw_trie_.insert(t.content, t.id);
        continue;
      }
      std::string key = t.content;
      if (normalizer) normalizer->normalize(key);
      normalized_trie_.insert(key, t.id);
    }
  }
}

bool AddedVocabulary::accept(std::string_view text, size_t& start, size_t& stop,
                             size_t previous_end, const AddedToken& token) const {
  if (token.single_word) {
    const bool space_before = start == 0 || !ends_with_word(text.substr(0, start));
    const bool space_after = stop == text.size() || !starts_with_word(text.substr(stop));
    if (!space_before || !space_after) return false;
  }
  if (token.lstrip)  // never back into what the previous match took
    start = std::max(trailing_space_start(text.substr(0, start)), previous_end);
  if (token.rstrip) stop += leading_space_length(text.substr(stop));
  return true;
}

void AddedVocabulary::split(std::string_view text, bool normalized_set, bool skip_special,
                            std::vector<TextSplit>& out) const {
  out.clear();
  const Trie& trie = normalized_set ? normalized_trie_ : raw_trie_;
  size_t previous_end = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.can_start(static_cast<unsigned char>(text[pos]))) {
      ++pos;
      continue;
    }
    const auto [length, id] = trie.longest_prefix(text.substr(pos));
    if (length == 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + length;
    pos = stop;  // like Aho-Corasick's iterator, resume after the raw match even if discarded
    const AddedToken& token = tokens_[by_id_.at(id)];
    if (skip_special && special_.contains(token.content)) continue;
    if (!accept(text, start, stop, previous_end, token)) continue;
    if (previous_end < start) out.push_back({previous_end, start, -1});
    out.push_back({start, stop, id});
    previous_end = stop;
  }
  if (previous_end != text.size()) out.push_back({previous_end, text.size(), -1});
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  const auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

bool AddedVocabulary::is_special(std::string_view content) const {
  return special_.find(content) != special_.end();
}

}  // namespace fp4llm::tok
