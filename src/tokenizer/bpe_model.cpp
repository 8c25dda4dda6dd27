#include "tokenizer/bpe_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm::tok {

namespace {

constexpr size_t kCacheCapacity = 100000;  // words; the cache stops growing when full
constexpr size_t kMaxCachedWordBytes = 256;

std::optional<std::string> optional_string(const nlohmann::json& model, const char* key) {
  if (!model.contains(key) || model[key].is_null()) return std::nullopt;
  if (!model[key].is_string()) fail("tokenizer.json model.{}: expected a string or null", key);
  return model[key].get<std::string>();
}

// The two halves of a merge, viewing into the JSON value.
std::pair<std::string_view, std::string_view> parse_merge(const nlohmann::json& merge,
                                                          size_t index) {
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string())
    return {merge[0].get_ref<const std::string&>(), merge[1].get_ref<const std::string&>()};
  if (merge.is_string()) {
    // "a b": Hugging Face splits on every space and wants exactly two parts.
    const std::string_view s = merge.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    if (space != std::string::npos && s.find(' ', space + 1) == std::string::npos)
      return {s.substr(0, space), s.substr(space + 1)};
  }
  fail("tokenizer.json model.merges[{}]: expected \"a b\" or [\"a\", \"b\"], got {}", index,
       merge.dump());
}

struct HeapEntry {
  int32_t rank, pos, new_id;
  // std heap functions build a max-heap: "greater" puts the lowest (rank, pos) on top.
  bool operator<(const HeapEntry& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

}  // namespace

std::unique_ptr<BpeModel> BpeModel::from_json(const nlohmann::json& model) {
  if (model.value("type", "BPE") != "BPE")
    fail("tokenizer.json: model type '{}' is not supported (only BPE)",
         model.value("type", "?"));
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0.0)
    fail("tokenizer.json model.dropout: BPE dropout is random and not supported");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail("tokenizer.json model.vocab: missing or not an object");
  if (!model.contains("merges") || !model["merges"].is_array())
    fail("tokenizer.json model.merges: missing or not an array");

  auto bpe = std::make_unique<BpeModel>();
  BpeModel& m = *bpe;
  m.unk_token_ = optional_string(model, "unk_token");
  m.prefix_ = optional_string(model, "continuing_subword_prefix").value_or("");
  m.suffix_ = optional_string(model, "end_of_word_suffix").value_or("");
  m.byte_fallback_ = model.value("byte_fallback", false);
  m.fuse_unk_ = model.value("fuse_unk", false);
  m.ignore_merges_ = model.value("ignore_merges", false);

  const auto& vocab = model["vocab"];
  m.vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      fail("tokenizer.json model.vocab[{:?}]: id must be a non-negative integer", token);
    const auto value = id.get<int32_t>();
    m.vocab_.insert(token, value);
    max_id = std::max(max_id, value);
  }
  // Ids index a table: a few unused ids are fine, a sparse vocabulary is not.
  if (size_t(max_id) > vocab.size() * 2 + 1024)
    fail("tokenizer.json model.vocab: ids go up to {} for {} entries; sparse ids are not "
         "supported",
         max_id, vocab.size());
  m.id_to_token_.resize(size_t(max_id + 1));
  m.has_id_.assign(size_t(max_id + 1), false);
  m.vocab_.for_each([&m](std::string_view token, int32_t id) {
    m.id_to_token_[size_t(id)] = token;
    m.has_id_[size_t(id)] = true;
  });

  const auto& merges = model["merges"];
  m.merges_.reserve(merges.size());
  std::string joined;
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto [a, b] = parse_merge(merges[i], i);
    const auto a_id = m.token_to_id(a), b_id = m.token_to_id(b);
    // The merged token drops b's continuing-subword prefix, whether or not b starts with it.
    joined.assign(a);
    joined.append(b.substr(std::min(m.prefix_.size(), b.size())));
    const auto new_id = m.token_to_id(joined);
    if (!a_id || !b_id || !new_id)
      fail("tokenizer.json model.merges[{}] ({:?} {:?}): token {:?} is not in the vocabulary", i,
           a, b, !a_id ? a : !b_id ? b : joined);
    m.merges_.insert(*a_id, *b_id, {int32_t(i), *new_id});
  }

  m.byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b)
    if (auto id = m.token_to_id(fmt::format("<0x{:02X}>", b))) m.byte_ids_[size_t(b)] = *id;
  m.bmp_ids_.assign(0x10000, -1);
  m.vocab_.for_each([&m](std::string_view token, int32_t id) {
    size_t i = 0;
    if (token.empty()) return;
    const char32_t cp = next_code_point(token, i);
    if (i == token.size() && cp < 0x10000) m.bmp_ids_[cp] = id;
  });
  return bpe;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  return vocab_.find(token);
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= has_id_.size() || !has_id_[size_t(id)]) return nullptr;
  return &id_to_token_[size_t(id)];
}

std::optional<int32_t> BpeModel::char_id(std::string_view ch, char32_t cp, bool first,
                                         bool last) const {
  const bool decorated = (!first && !prefix_.empty()) || (last && !suffix_.empty());
  if (!decorated && cp < 0x10000) {
    const int32_t id = bmp_ids_[cp];
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  }
  if (!decorated) return token_to_id(ch);
  std::string s = first ? std::string(ch) : prefix_ + std::string(ch);
  if (last) s += suffix_;
  return token_to_id(s);
}

// One symbol per character; characters missing from the vocabulary become <0xNN> byte tokens
// when byte_fallback is on (only if every byte has one), otherwise the unknown token, fused
// into one for a run when fuse_unk is set. Mirrors Hugging Face's merge_word, including that a
// pending unknown token is emitted only when the next known character arrives.
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  symbols.clear();
  auto add = [&symbols](int32_t id) {
    const auto n = int32_t(symbols.size());
    symbols.push_back({id, n - 1, -1, true});
    if (n > 0) symbols[size_t(n - 1)].next = n;
  };
  std::optional<int32_t> pending_unk;
  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    const char32_t cp = next_code_point(word, i);
    const std::string_view ch = word.substr(start, i - start);
    if (const auto id = char_id(ch, cp, start == 0, i == word.size())) {
      if (pending_unk) add(*pending_unk);
      pending_unk.reset();
      add(*id);
      continue;
    }
    if (byte_fallback_ && std::all_of(ch.begin(), ch.end(), [this](char c) {
          return byte_ids_[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (const char c : ch) add(byte_ids_[static_cast<unsigned char>(c)]);
      continue;
    }
    if (!unk_token_) continue;  // Hugging Face drops the character silently here
    const auto unk = token_to_id(*unk_token_);
    if (!unk) fail("tokenizer.json model.unk_token {:?} is not in the vocabulary", *unk_token_);
    if (pending_unk && !fuse_unk_) add(*pending_unk);
    pending_unk = *unk;
  }
  if (pending_unk) add(*pending_unk);
}

void BpeModel::merge(std::vector<Symbol>& symbols) const {
  thread_local std::vector<HeapEntry> heap;
  heap.clear();
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const MergeRule* r = merges_.find(symbols[i].id, symbols[i + 1].id))
      heap.push_back({r->rank, int32_t(i), r->new_id});
  std::make_heap(heap.begin(), heap.end());
  auto push = [](HeapEntry e) {
    heap.push_back(e);
    std::push_heap(heap.begin(), heap.end());
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const HeapEntry top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[size_t(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[size_t(left.next)];
    // An entry is stale when either side has changed since it was queued.
    const MergeRule* rule = merges_.find(left.id, right.id);
    if (!rule || rule->new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0) {
      const Symbol& before = symbols[size_t(left.prev)];
      if (const MergeRule* r = merges_.find(before.id, left.id))
        push({r->rank, left.prev, r->new_id});
    }
    if (left.next >= 0) {
      if (const MergeRule* r = merges_.find(left.id, symbols[size_t(left.next)].id))
        push({r->rank, top.pos, r->new_id});
    }
  }
}

bool BpeModel::cached(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() >= kMaxCachedWordBytes) return false;
  std::shared_lock lock(cache_mutex_);
  const auto it = cache_.find(word);
  if (it == cache_.end()) return false;
  out.insert(out.end(), it->second.begin(), it->second.end());
  return true;
}

void BpeModel::remember(std::string_view word, const int32_t* ids, size_t count) const {
  if (word.size() >= kMaxCachedWordBytes) return;
  std::unique_lock lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) return;
  cache_.emplace(std::string(word), std::vector<int32_t>(ids, ids + count));
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (cached(word, out)) return;
  thread_local std::vector<Symbol> symbols;
  initial_symbols(word, symbols);
  merge(symbols);
  const size_t first = out.size();
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[size_t(i)].next)
    out.push_back(symbols[size_t(i)].id);
  remember(word, out.data() + first, out.size() - first);
}

}  // namespace fp4llm::tok
