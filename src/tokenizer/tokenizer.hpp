// fp4llm's tokenizer: reads a Hugging Face model folder (tokenizer.json, tokenizer_config.json,
// generation_config.json) and encodes / decodes exactly as the Python `tokenizers` package does
// with the same files. Immutable after load and safe to share between threads; copies are cheap
// (they share one loaded tokenizer).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fp4llm {

struct EncodeOptions {
  // Add what the post-processor adds around a sequence (Gemma's <bos>). Pass false for text
  // from a chat template, which writes those tokens itself.
  bool add_special_tokens = true;
  // Match special tokens written in the text (like HF encode). Servers pass false for user
  // text so that "<|im_end|>" typed by a user is encoded as plain characters
  // (HF's encode_special_tokens = True).
  bool parse_special = true;
};

class StreamingDetokenizer;

class Tokenizer {
 public:
  // `path` is a model folder holding tokenizer.json, the tokenizer.json file itself, or a .gguf
  // file (its tokenizer.ggml.* metadata; see gguf_tokenizer_files.hpp).
  // Throws fp4llm::Error naming the file and the unsupported component or bad field.
  static Tokenizer load(const std::filesystem::path& path);
  // From parsed files; `config` and `generation_config` may be JSON null.
  static Tokenizer from_json(const nlohmann::json& tokenizer_json, const nlohmann::json& config,
                             const nlohmann::json& generation_config);

  // Throws fp4llm::Error when `text` is not valid UTF-8.
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Unknown ids are skipped, as Hugging Face does; ill-formed bytes become U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // One more than the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  // Ids that end generation: the eos token and generation_config's eos_token_id(s).
  std::vector<int32_t> stop_ids() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocabulary string of `id`; throws fp4llm::Error for an unknown id.
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

  struct Impl;  // defined in tokenizer_impl.hpp, internal to the tokenizer library

 private:
  friend class StreamingDetokenizer;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  static Tokenizer build(const nlohmann::json& tokenizer_json, const nlohmann::json& config,
                         const nlohmann::json& generation_config);
  std::shared_ptr<const Impl> impl_;
};

// Turns generated ids into text one id at a time. Each push returns only text that no later
// token can change, so a character split across tokens (byte fallback, multi-byte pieces) is
// never emitted half-way; the concatenation of all pushes and flush() equals decode() of the ids.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  ~StreamingDetokenizer();
  StreamingDetokenizer(StreamingDetokenizer&&) noexcept;
  StreamingDetokenizer& operator=(StreamingDetokenizer&&) noexcept;

  std::string push(int32_t id);
  // Ends the text: returns what was held back (an unfinished character becomes U+FFFD). The
  // next push starts a new text.
  std::string flush();

 private:
  std::shared_ptr<const Tokenizer::Impl> impl_;
  bool skip_special_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace fp4llm
