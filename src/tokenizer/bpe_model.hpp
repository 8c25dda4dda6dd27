// tokenizer.json "model" of type BPE: vocabulary, ranked merges, optional byte fallback to
// <0xNN> tokens, unknown-token handling, continuing-subword prefix / end-of-word suffix and
// ignore_merges, with Hugging Face's exact merge order (lowest rank first, then leftmost).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/merge_table.hpp"
#include "tokenizer/string_map.hpp"
#include "tokenizer/token_index.hpp"

namespace fp4llm::tok {

class BpeModel {
 public:
  // Throws naming the field for anything unsupported (dropout, merges out of vocabulary...).
  static std::unique_ptr<BpeModel> from_json(const nlohmann::json& model);

  // Appends the ids of one pre-tokenized word.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  // Number of vocabulary entries (Hugging Face's get_vocab_size for the model).
  int32_t vocab_entries() const { return int32_t(vocab_.size()); }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours still alive, -1 at the ends
    bool alive;
  };

  void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  std::optional<int32_t> char_id(std::string_view ch, char32_t cp, bool first, bool last) const;
  void merge(std::vector<Symbol>& symbols) const;
  bool cached(std::string_view word, std::vector<int32_t>& out) const;
  void remember(std::string_view word, const int32_t* ids, size_t count) const;

  TokenIndex vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  MergeTable merges_;
  std::optional<std::string> unk_token_;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::vector<int32_t> byte_ids_;  // <0xNN> token per byte, -1 where missing
  std::vector<int32_t> bmp_ids_;   // single-character tokens below U+10000, -1 where none

  // Words seen before: most text repeats a small set of words.
  mutable std::shared_mutex cache_mutex_;
  mutable StringMap<std::vector<int32_t>> cache_;
};

}  // namespace fp4llm::tok
