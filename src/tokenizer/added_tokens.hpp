// tokenizer.json "added_tokens": strings matched whole in the input before normalization and
// BPE (special tokens such as <|im_end|> and user-defined pieces such as "\n\n"). Matching
// follows Hugging Face's AddedVocabulary: leftmost-longest over all tokens, then the
// single_word / lstrip / rstrip rules; `normalized` tokens are matched after normalization.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/string_map.hpp"

namespace fp4llm::tok {

class BpeModel;
class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// A stretch of input: an added token (`id` >= 0) or text to normalize and encode (`id` -1).
struct TextSplit {
  size_t begin, end;
  int32_t id;
};

class AddedVocabulary {
 public:
  // Assigns ids the way Hugging Face does on load: the model's id when the content is in the
  // vocabulary, else the next id after the vocabulary; throws when that disagrees with the file.
  void load(const nlohmann::json& added_tokens, const BpeModel& model,
            const Normalizer* normalizer);

  // Splits `text` at matches of the raw (normalized == false) or the normalized tokens. With
  // `skip_special`, special tokens are not matched, as with encode_special_tokens in HF.
  void split(std::string_view text, bool normalized_set, bool skip_special,
             std::vector<TextSplit>& out) const;

  std::optional<int32_t> token_to_id(std::string_view content) const;
  const AddedToken* find_id(int32_t id) const;
  bool is_special(std::string_view content) const;
  bool has_normalized_tokens() const { return !normalized_trie_.empty(); }
  int32_t max_id() const { return max_id_; }

 private:
  // A byte trie answering "longest token starting here" in one walk.
  class Trie {
   public:
    void insert(std::string_view key, int32_t id);
    // Length and id of the longest key that is a prefix of `text`, or length 0.
    std::pair<size_t, int32_t> longest_prefix(std::string_view text) const;
    bool empty() const { return nodes_.size() <= 1; }
    bool can_start(unsigned char c) const { return !empty() && first_[c]; }

   private:
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
      int32_t id = -1;
    };
    int32_t child(int32_t node, unsigned char c) const;
    std::vector<Node> nodes_{Node{}};
    bool first_[256] = {};
  };

  bool accept(std::string_view text, size_t& start, size_t& stop, size_t previous_end,
              const AddedToken& token) const;

  std::vector<AddedToken> tokens_;                   // in file order
  std::unordered_map<int32_t, size_t> by_id_;        // id -> index in tokens_
  StringMap<int32_t> by_content_;
  StringMap<bool> special_;                          // contents of special tokens
  Trie raw_trie_, normalized_trie_;
  int32_t max_id_ = -1;
};

}  // namespace fp4llm::tok
