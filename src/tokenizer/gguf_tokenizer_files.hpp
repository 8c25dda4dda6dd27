// A GGUF's tokenizer (the tokenizer.ggml.* metadata llama.cpp's converter writes) restated as the
// Hugging Face files it was converted from, so that one loader (Tokenizer::from_json) and one
// chat-template reader serve both. Supported: "gpt2" byte-level BPE with the "qwen2"
// pre-tokenizer (Qwen3) and "llama" SentencePiece vocabularies without a space prefix (Gemma 3),
// whose merges are derived from the scores as Hugging Face derives them. See docs/tokenizer.md.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace fp4llm {

struct GgufTokenizerFiles {
  nlohmann::json tokenizer_json;
  // bos/eos/pad/unk tokens, add_bos_token, and chat_template when the GGUF has one.
  nlohmann::ordered_json tokenizer_config;
  // eos_token_id: every end-of-generation id (eos, eot, eom, and llama.cpp's end-of-turn texts).
  nlohmann::json generation_config;
};

// `metadata`: the GGUF key/values as GgufFile gives them; `where` names the file in errors.
GgufTokenizerFiles gguf_tokenizer_files(const nlohmann::json& metadata, const std::string& where);
GgufTokenizerFiles read_gguf_tokenizer_files(const std::filesystem::path& gguf);

}  // namespace fp4llm
