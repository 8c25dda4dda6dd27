#include "tokenizer/spm_merges.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "tokenizer/utf8.hpp"

namespace fp4llm::tok {

namespace {

struct Candidate {
  float score;          // of the merged piece
  int32_t left_chars;   // code points of the left part
  int32_t right_chars;  // code points of the right part
  int32_t id;           // of the merged piece
  uint32_t split;       // byte offset of the split inside the piece
};

// transformers' convert_slow_tokenizer.generate_merges (with vocab_scores): pieces in id order,
// each split wherever both halves are pieces, then a stable sort on (score, len(left),
// len(right)) descending. Lengths are Python string lengths: code points. Splits of one piece
// differ in len(left), so (score, len(left), len(right), id) orders every candidate uniquely.
bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.left_chars != b.left_chars) return a.left_chars > b.left_chars;
  if (a.right_chars != b.right_chars) return a.right_chars > b.right_chars;
  return a.id < b.id;
}

}  // namespace

nlohmann::json spm_merges(const std::vector<std::string>& pieces, const std::vector<float>& scores) {
  // Python's {piece: id} dict: a repeated piece keeps its last id (only membership matters here).
  std::unordered_map<std::string_view, int32_t> vocab;
  vocab.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i)
    if (!pieces[i].empty()) vocab[pieces[i]] = int32_t(i);

  std::vector<Candidate> candidates;
  std::vector<size_t> bounds;  // code point starts of one piece
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string_view piece = pieces[id];
    bounds.clear();
    for (size_t i = 0; i < piece.size();) {
      bounds.push_back(i);
      next_code_point(piece, i);
    }
    const auto chars = int32_t(bounds.size());
    for (int32_t k = 1; k < chars; ++k) {
      const size_t at = bounds[size_t(k)];
      if (vocab.count(piece.substr(0, at)) && vocab.count(piece.substr(at)))
        candidates.push_back({scores[id], k, chars - k, int32_t(id), uint32_t(at)});
    }
  }
  std::sort(candidates.begin(), candidates.end(), ranks_before);

  nlohmann::json merges = nlohmann::json::array();
  merges.get_ref<nlohmann::json::array_t&>().reserve(candidates.size());
  for (const Candidate& c : candidates) {
    const std::string& piece = pieces[size_t(c.id)];
    merges.push_back(nlohmann::json::array({piece.substr(0, c.split), piece.substr(c.split)}));
  }
  return merges;
}

}  // namespace fp4llm::tok
