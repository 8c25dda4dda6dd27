#include "tokenizer/tokenizer.hpp"

#include <algorithm>

#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm {

namespace {

void encode_words(const Tokenizer::Impl& t, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  tok::PreTokens words{std::string(text), {{0, uint32_t(text.size())}}};
  if (t.pre_tokenizer) t.pre_tokenizer->apply(words);
  const std::string_view all = words.text;
  for (const tok::Span& s : words.spans) t.model->encode_word(all.substr(s.begin, s.end - s.begin), out);
}

// Text between raw added tokens: normalized, then split again at the added tokens that match
// normalized text, then pre-tokenized and encoded (Hugging Face's extract_and_normalize).
void encode_segment(const Tokenizer::Impl& t, std::string_view segment, bool skip_special,
                    std::vector<int32_t>& out) {
  std::string normalized(segment);
  if (t.normalizer) t.normalizer->normalize(normalized);
  if (!t.added.has_normalized_tokens()) {
    encode_words(t, normalized, out);
    return;
  }
  std::vector<tok::TextSplit> splits;
  t.added.split(normalized, /*normalized_set=*/true, skip_special, splits);
  for (const auto& s : splits) {
    if (s.id >= 0)
      out.push_back(s.id);
    else
      encode_words(t, std::string_view(normalized).substr(s.begin, s.end - s.begin), out);
  }
}

}  // namespace

const std::string* Tokenizer::Impl::token_text(int32_t id, bool skip_special) const {
  if (const tok::AddedToken* a = added.find_id(id)) {
    if (skip_special && added.is_special(a->content)) return nullptr;
    return &a->content;
  }
  const std::string* s = model->id_to_token(id);
  // A vocabulary string can be special only by also being an added token's content.
  if (s && skip_special && added.is_special(*s)) return nullptr;
  return s;
}

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  if (const size_t bad = tok::first_invalid_utf8(text); bad != text.size())
    fail("tokenizer: input text is not valid UTF-8 (byte offset {})", bad);
  const Impl& t = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens)
    out.insert(out.end(), t.post_processor.prefix().begin(), t.post_processor.prefix().end());
  std::vector<tok::TextSplit> splits;
  t.added.split(text, /*normalized_set=*/false, !options.parse_special, splits);
  for (const auto& s : splits) {
    if (s.id >= 0)
      out.push_back(s.id);
    else
      encode_segment(t, text.substr(s.begin, s.end - s.begin), !options.parse_special, out);
  }
  if (options.add_special_tokens)
    out.insert(out.end(), t.post_processor.suffix().begin(), t.post_processor.suffix().end());
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids)
    if (const std::string* s = impl_->token_text(id, skip_special_tokens)) tokens.push_back(*s);
  return impl_->decoder.decode(std::move(tokens));
}

int32_t Tokenizer::vocab_size() const {
  return std::max(impl_->model->vocab_entries(), impl_->added.max_id() + 1);
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::vector<int32_t> Tokenizer::stop_ids() const { return impl_->stop_ids; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto id = impl_->added.token_to_id(token)) return id;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* s = impl_->token_text(id, false);
  if (!s) fail("tokenizer: no token has id {}", id);
  return *s;
}

bool Tokenizer::is_special(int32_t id) const {
  const std::string* s = impl_->token_text(id, false);
  return s && impl_->added.is_special(*s);
}

}  // namespace fp4llm
