// libFuzzer target: arbitrary bytes through encode, arbitrary ids through decode and the
// streaming detokenizer, on the real Qwen3 and Gemma3 tokenizers. Besides memory errors it
// checks properties that must hold for every input:
//   - invalid UTF-8 is rejected with fp4llm::Error, nothing else is thrown;
//   - streamed pieces are valid UTF-8 and concatenate to decode() of the same ids;
//   - parse_special = false never yields a special token id;
//   - decode(encode(x)) == x where no normalization applies (Qwen: ASCII text; Gemma: text
//     without U+2581, which its normalizer uses for spaces).
// FP4LLM_FUZZ_TOKENIZER=qwen3|gemma3 restricts the run to one tokenizer.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace {

std::vector<fp4llm::Tokenizer>* g_tokenizers = nullptr;
std::vector<std::string> g_names;

void check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "property violated: %s\n", what);
    abort();
  }
}

void check_stream(const fp4llm::Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  fp4llm::StreamingDetokenizer stream(t, skip);
  std::string all;
  for (const int32_t id : ids) {
    const std::string piece = stream.push(id);
    check(fp4llm::tok::is_valid_utf8(piece), "streamed piece is valid UTF-8");
    all += piece;
  }
  const std::string rest = stream.flush();
  check(fp4llm::tok::is_valid_utf8(rest), "flushed piece is valid UTF-8");
  all += rest;
  check(all == t.decode(ids, skip), "stream == decode");
}

bool is_ascii(std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

void fuzz_encode(const fp4llm::Tokenizer& t, const std::string& name, std::string_view text) {
  std::vector<int32_t> ids;
  try {
    ids = t.encode(text, {.add_special_tokens = false, .parse_special = true});
  } catch (const fp4llm::Error&) {
    check(!fp4llm::tok::is_valid_utf8(text), "only invalid UTF-8 is rejected");
    return;
  }
  const auto plain = t.encode(text, {.add_special_tokens = true, .parse_special = false});
  const auto bos = t.bos_id();
  for (size_t i = 0; i < plain.size(); ++i)
    if (!(i == 0 && bos && plain[0] == *bos))
      check(!t.is_special(plain[i]), "parse_special=false yields no special token");
  const std::string decoded = t.decode(plain, /*skip_special_tokens=*/true);
  const bool normalization_free = name == "qwen3"
                                      ? is_ascii(text)
                                      : text.find("\xE2\x96\x81") == std::string_view::npos;
  if (normalization_free) check(decoded == text, "decode(encode(x)) == x");
  check_stream(t, ids, false);
  check_stream(t, plain, true);
}

void fuzz_decode(const fp4llm::Tokenizer& t, const uint8_t* data, size_t size) {
  std::vector<int32_t> ids;
  const int32_t range = t.vocab_size() + 64;  // some ids past the vocabulary, which are skipped
  for (size_t i = 0; i + 3 <= size; i += 3) {
    const uint32_t raw = data[i] | (data[i + 1] << 8) | (uint32_t(data[i + 2]) << 16);
    // Small ids (byte tokens, short pieces) are where multi-byte characters get split.
    ids.push_back((raw & 1) ? int32_t((raw >> 1) % 600) : int32_t((raw >> 1) % uint32_t(range)));
  }
  check_stream(t, ids, false);
  check_stream(t, ids, true);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("FP4LLM_SHARED_DIR");
  const std::filesystem::path root =
      std::filesystem::path(env ? env : FP4LLM_DEFAULT_SHARED_DIR) / "testdata" / "tokenizers";
  const char* only = std::getenv("FP4LLM_FUZZ_TOKENIZER");
  g_tokenizers = new std::vector<fp4llm::Tokenizer>();
  for (const char* name : {"qwen3", "gemma3"}) {
    if (only && std::strcmp(only, name) != 0) continue;
    g_tokenizers->push_back(fp4llm::Tokenizer::load(root / name));
    g_names.push_back(name);
  }
  if (g_tokenizers->empty()) {
    fprintf(stderr, "FP4LLM_FUZZ_TOKENIZER must be qwen3 or gemma3\n");
    abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t which = (data[0] >> 1) % g_tokenizers->size();
  const fp4llm::Tokenizer& t = (*g_tokenizers)[which];
  if (data[0] & 1)
    fuzz_decode(t, data + 1, size - 1);
  else
    fuzz_encode(t, g_names[which],
                std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  return 0;
}
