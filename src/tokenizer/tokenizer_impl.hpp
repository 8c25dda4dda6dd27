// The parts of a loaded tokenizer, shared by tokenizer.cpp (encode / decode),
// tokenizer_loader.cpp (building them) and streaming_detokenizer.cpp.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "tokenizer/added_tokens.hpp"
#include "tokenizer/bpe_model.hpp"
#include "tokenizer/decoder.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/post_processor.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/tokenizer.hpp"

namespace fp4llm {

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  tok::AddedVocabulary added;
  tok::PostProcessor post_processor;
  tok::Decoder decoder;
  std::optional<int32_t> bos, eos;
  std::vector<int32_t> stop_ids;

  // The string decode() uses for `id` (added tokens first), nullptr when the id is unknown or
  // is a special token being skipped.
  const std::string* token_text(int32_t id, bool skip_special) const;
};

}  // namespace fp4llm
