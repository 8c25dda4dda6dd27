#include "tokenizer/gguf_tokenizer_files.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include "io/gguf_file.hpp"
#include "tokenizer/spm_merges.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// llama.cpp's llama_token_type.
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// Qwen2's split regex, as its tokenizer.json spells it (llama.cpp's "qwen2" pre-tokenizer is the
// same expression).
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Texts llama.cpp treats as end of generation whatever the eos id says (llama-vocab.cpp).
constexpr std::array<const char*, 8> kEndOfTurnTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
    "<EOT>", "<end_of_utterance>"};

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;  // "llama" only
};

const json& require(const json& meta, const std::string& key, const std::string& where) {
  const auto it = meta.find(key);
  if (it == meta.end()) fail("{}: GGUF metadata '{}' is missing", where, key);
  return *it;
}

std::optional<int32_t> token_id(const json& meta, const std::string& key, const Vocab& v,
                                const std::string& where) {
  const auto it = meta.find(key);
  if (it == meta.end()) return std::nullopt;
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() >= int64_t(v.tokens.size()))
    fail("{}: GGUF metadata '{}' = {} is not a token id", where, key, it->dump());
  return it->get<int32_t>();
}

Vocab read_vocab(const json& meta, bool with_scores, const std::string& where) {
  const json& tokens = require(meta, "tokenizer.ggml.tokens", where);
  if (!tokens.is_array() || tokens.empty()) fail("{}: tokenizer.ggml.tokens is not a list of strings", where);
  Vocab v;
  v.tokens.reserve(tokens.size());
  for (const auto& t : tokens) {
    if (!t.is_string()) fail("{}: tokenizer.ggml.tokens[{}] is not a string", where, v.tokens.size());
    if (!tok::is_valid_utf8(t.get_ref<const std::string&>()))
      fail("{}: tokenizer.ggml.tokens[{}] is not valid UTF-8", where, v.tokens.size());
    v.tokens.push_back(t.get<std::string>());
  }
  const auto list = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    const auto it = meta.find(key);
    if (it == meta.end()) return std::vector<T>(v.tokens.size(), fallback);
    if (!it->is_array() || it->size() != v.tokens.size())
      fail("{}: {} must list one value per token ({})", where, key, v.tokens.size());
    return it->template get<std::vector<T>>();
  };
  v.types = list("tokenizer.ggml.token_type", int32_t(kNormal));
  if (with_scores) {
    if (!meta.contains("tokenizer.ggml.scores")) fail("{}: tokenizer.ggml.scores is missing", where);
    v.scores = list("tokenizer.ggml.scores", 0.0f);
  }
  return v;
}

bool is_added(int32_t type) { return type == kControl || type == kUserDefined || type == kUnknown; }

// Control and user-defined tokens are Hugging Face added tokens, matched in the raw text. GGUF
// keeps no "special" flag: control (and unknown) tokens count as special, as in llama.cpp.
json added_tokens(const Vocab& v) {
  json added = json::array();
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (is_added(v.types[i]))
      added.push_back({{"id", i}, {"content", v.tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", v.types[i] != kUserDefined}});
  return added;
}

json bpe_model(const Vocab& v, json merges, bool byte_fallback, std::optional<int32_t> unk) {
  json vocab = json::object();
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.types[i] != kUnused) vocab[v.tokens[i]] = i;  // unused: padding rows, no text
  return {{"type", "BPE"}, {"dropout", nullptr},
          {"unk_token", unk ? json(v.tokens[size_t(*unk)]) : json(nullptr)},
          {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
          {"fuse_unk", byte_fallback}, {"byte_fallback", byte_fallback}, {"ignore_merges", false},
          {"vocab", std::move(vocab)}, {"merges", std::move(merges)}};
}

json template_post_processor(const Vocab& v, std::optional<int32_t> bos, std::optional<int32_t> eos) {
  json single = json::array(), specials = json::object();
  const auto special = [&](int32_t id) {
    const std::string& t = v.tokens[size_t(id)];
    specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
    return json{{"SpecialToken", {{"id", t}, {"type_id", 0}}}};
  };
  if (bos) single.push_back(special(*bos));
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) single.push_back(special(*eos));
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", json::array()},
          {"special_tokens", specials}};
}

bool flag(const json& meta, const std::string& key, bool fallback) {
  const auto it = meta.find(key);
  return it != meta.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

json post_processor(const json& meta, const Vocab& v, const std::string& where) {
  const auto bos = token_id(meta, "tokenizer.ggml.bos_token_id", v, where);
  const auto eos = token_id(meta, "tokenizer.ggml.eos_token_id", v, where);
  const bool add_bos = flag(meta, "tokenizer.ggml.add_bos_token", false);
  const bool add_eos = flag(meta, "tokenizer.ggml.add_eos_token", false);
  if (add_bos && !bos) fail("{}: tokenizer.ggml.add_bos_token is set but bos_token_id is missing", where);
  if (add_eos && !eos) fail("{}: tokenizer.ggml.add_eos_token is set but eos_token_id is missing", where);
  return template_post_processor(v, add_bos ? bos : std::nullopt, add_eos ? eos : std::nullopt);
}

// "gpt2": byte-level BPE with its merge list; the split regex comes from the pre-tokenizer name.
json gpt2_tokenizer(const json& meta, Vocab& v, const std::string& where) {
  const std::string pre = meta.value("tokenizer.ggml.pre", "default");
  if (pre != "qwen2")
    fail("{}: GGUF pre-tokenizer '{}' is not supported (supported: qwen2); pass --tokenizer DIR "
         "with the model's tokenizer.json",
         where, pre);
  const json& merges = require(meta, "tokenizer.ggml.merges", where);
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                           {"use_regex", false}};
  return {{"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
              byte_level}}}},
          {"decoder", byte_level},
          {"model", bpe_model(v, merges, false, std::nullopt)}};
}

// "llama": a SentencePiece vocabulary with scores, as Hugging Face's converter turns it into a
// byte-fallback BPE (Gemma's tokenizer.json): spaces become U+2581, merges come from the scores.
json llama_tokenizer(const json& meta, Vocab& v, const std::string& where) {
  if (flag(meta, "tokenizer.ggml.add_space_prefix", true))
    fail("{}: this SentencePiece GGUF vocabulary prepends a space to the text "
         "(tokenizer.ggml.add_space_prefix), which fp4llm does not reproduce; pass --tokenizer DIR "
         "with the model's tokenizer.json",
         where);
  std::vector<float> scores(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    // llama.cpp's converter writes user-defined pieces with spaces and scores added tokens as
    // -1000; the SentencePiece model had U+2581 and score 0, which is what the merges rest on.
    if (v.types[i] == kUserDefined) {
      std::string& t = v.tokens[i];
      for (size_t p = t.find(' '); p != std::string::npos; p = t.find(' ', p + 3)) t.replace(p, 1, "\xE2\x96\x81");
    }
    scores[i] = v.types[i] == kNormal || v.types[i] == kByte ? v.scores[i] : 0.0f;
  }
  std::vector<std::string> pieces = v.tokens;
  for (size_t i = 0; i < pieces.size(); ++i)
    if (v.types[i] == kUnused) pieces[i].clear();
  const json space = {{"String", " "}};
  return {{"normalizer", {{"type", "Replace"}, {"pattern", space}, {"content", "\xE2\x96\x81"}}},
          {"pre_tokenizer", {{"type", "Split"}, {"pattern", space}, {"behavior", "MergedWithPrevious"}, {"invert", false}}},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}}}}}},
          {"model", bpe_model(v, tok::spm_merges(pieces, scores), true,
                              token_id(meta, "tokenizer.ggml.unknown_token_id", v, where))}};
}

ordered_json tokenizer_config(const json& meta, const Vocab& v, const std::string& where) {
  ordered_json c = ordered_json::object();
  const std::pair<const char*, const char*> names[] = {{"bos_token", "bos_token_id"},
                                                      {"eos_token", "eos_token_id"},
                                                      {"unk_token", "unknown_token_id"},
                                                      {"pad_token", "padding_token_id"}};
  for (const auto& [name, key] : names)
    if (const auto id = token_id(meta, std::string("tokenizer.ggml.") + key, v, where))
      c[name] = v.tokens[size_t(*id)];
  if (const auto it = meta.find("tokenizer.chat_template"); it != meta.end()) {
    if (!it->is_string()) fail("{}: tokenizer.chat_template is not a string", where);
    c["chat_template"] = *it;
  }
  return c;
}

json generation_config(const json& meta, const Vocab& v, const std::string& where) {
  json ids = json::array();
  const auto add = [&ids](int32_t id) {
    if (std::find(ids.begin(), ids.end(), json(id)) == ids.end()) ids.push_back(id);
  };
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (const auto id = token_id(meta, key, v, where)) add(*id);
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (is_added(v.types[i]))
      for (const char* text : kEndOfTurnTexts)
        if (v.tokens[i] == text) add(int32_t(i));
  return {{"eos_token_id", ids}};
}

}  // namespace

GgufTokenizerFiles gguf_tokenizer_files(const json& meta, const std::string& where) {
  const json& model = require(meta, "tokenizer.ggml.model", where);
  if (!model.is_string()) fail("{}: tokenizer.ggml.model is not a string", where);
  const std::string kind = model.get<std::string>();
  if (kind != "gpt2" && kind != "llama")
    fail("{}: GGUF tokenizer model '{}' is not supported (gpt2, llama); pass --tokenizer DIR with "
         "the model's tokenizer.json",
         where, kind);
  Vocab v = read_vocab(meta, kind == "llama", where);
  GgufTokenizerFiles f;
  f.tokenizer_json = kind == "gpt2" ? gpt2_tokenizer(meta, v, where) : llama_tokenizer(meta, v, where);
  f.tokenizer_json["version"] = "1.0";
  f.tokenizer_json["added_tokens"] = added_tokens(v);
  f.tokenizer_json["post_processor"] = post_processor(meta, v, where);
  f.tokenizer_config = tokenizer_config(meta, v, where);
  f.generation_config = generation_config(meta, v, where);
  return f;
}

GgufTokenizerFiles read_gguf_tokenizer_files(const std::filesystem::path& gguf) {
  return gguf_tokenizer_files(GgufFile::open(gguf).metadata(), gguf.string());
}

}  // namespace fp4llm
