#include "tokenizer/decoder_stream.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace fp4llm {

struct StreamingDetokenizer::State {
  std::unique_ptr<tok::DecoderStream> stream;
};

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : impl_(tokenizer.impl_), skip_special_(skip_special_tokens), state_(std::make_unique<State>()) {
  state_->stream = impl_->decoder.stream();
}

StreamingDetokenizer::~StreamingDetokenizer() = default;
StreamingDetokenizer::StreamingDetokenizer(StreamingDetokenizer&&) noexcept = default;
StreamingDetokenizer& StreamingDetokenizer::operator=(StreamingDetokenizer&&) noexcept = default;

std::string StreamingDetokenizer::push(int32_t id) {
  const std::string* token = impl_->token_text(id, skip_special_);
  if (!token) return {};  // unknown ids and skipped special tokens add nothing, as in decode()
  return state_->stream->push(*token);
}

std::string StreamingDetokenizer::flush() {
  std::string rest = state_->stream->finish();
  state_->stream = impl_->decoder.stream();
  return rest;
}

}  // namespace fp4llm
