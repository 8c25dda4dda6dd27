// Unit tests of the tokenizer library: UTF-8 handling against the Unicode standard's own
// examples, the public API on the real files, the streaming detokenizer's hold-back rules and
// concurrent use. Parity with Hugging Face over a large corpus is in test_tokenizer_parity.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"

namespace fp4llm {
namespace {

std::filesystem::path tokenizer_dir(const char* name) {
  const char* shared = std::getenv("FP4LLM_SHARED_DIR");
  if (!shared) throw std::runtime_error("FP4LLM_SHARED_DIR is not set (run through ctest)");
  const auto dir = std::filesystem::path(shared) / "testdata" / "tokenizers" / name;
  if (!std::filesystem::exists(dir / "tokenizer.json"))
    throw std::runtime_error("missing " + (dir / "tokenizer.json").string() +
                             ": the shared folder with the real tokenizer files is required");
  return dir;
}

const Tokenizer& qwen() {
  static const Tokenizer t = Tokenizer::load(tokenizer_dir("qwen3"));
  return t;
}

const Tokenizer& gemma() {
  static const Tokenizer t = Tokenizer::load(tokenizer_dir("gemma3"));
  return t;
}

std::string lossy(std::string_view bytes) {
  std::string out;
  tok::append_utf8_lossy(out, bytes);
  return out;
}

const std::string kFFFD = "\xEF\xBF\xBD";

TEST(Utf8, LossyReplacesMaximalSubpartsAsTheUnicodeStandardShows) {
  // Unicode 15.0 section 3.9, table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  EXPECT_EQ(lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFFFD + kFFFD + kFFFD + "b" + kFFFD + "c" + kFFFD + kFFFD + "d");
  // Tables 3-9 to 3-11: a non-shortest form, a surrogate and a code point past U+10FFFF are
  // never a valid prefix, so each byte becomes one U+FFFD.
  EXPECT_EQ(lossy("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);
  EXPECT_EQ(lossy("\xC0\xAF"), kFFFD + kFFFD);
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), kFFFD + kFFFD + kFFFD + kFFFD);
  EXPECT_EQ(lossy("\xE4\xB8\xAD"), "\xE4\xB8\xAD");
  EXPECT_EQ(lossy("\xE4\xB8"), kFFFD);  // an unfinished character at the end is one U+FFFD
}

TEST(Utf8, IncompleteTailIsOnlyAValidUnfinishedPrefix) {
  EXPECT_EQ(tok::incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(tok::incomplete_utf8_tail("ab\xE4\xB8"), 2u);
  EXPECT_EQ(tok::incomplete_utf8_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(tok::incomplete_utf8_tail("\xE4\x41"), 0u);
  EXPECT_EQ(tok::incomplete_utf8_tail("\xED\xA0"), 0u);  // would be a surrogate
  EXPECT_EQ(tok::incomplete_utf8_tail("\xE4\xB8\xAD"), 0u);
}

TEST(Tokenizer, PublicApiOnTheRealFiles) {
  EXPECT_EQ(qwen().vocab_size(), 151669);
  EXPECT_FALSE(qwen().bos_id().has_value());
  EXPECT_EQ(qwen().stop_ids(), std::vector<int32_t>{151645});  // <|im_end|>
  EXPECT_EQ(qwen().token_to_id("<think>"), 151667);
  EXPECT_EQ(qwen().id_to_token(151644), "<|im_start|>");
  EXPECT_TRUE(qwen().is_special(151645));
  EXPECT_FALSE(qwen().is_special(151667));  // <think> is added but not special
  EXPECT_THROW(qwen().id_to_token(999999), Error);

  EXPECT_EQ(gemma().vocab_size(), 262145);
  EXPECT_EQ(gemma().bos_id(), 2);
  EXPECT_EQ(gemma().stop_ids(), std::vector<int32_t>{106});  // <end_of_turn>
  const auto ids = gemma().encode("hi");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 2);  // <bos> exactly once
  EXPECT_NE(ids.size() > 1 ? ids[1] : -1, 2);
  EXPECT_EQ(gemma().encode("hi", {.add_special_tokens = false, .parse_special = true}).front(),
            ids[1]);
  EXPECT_THROW(qwen().encode("bad \xFF byte"), Error);
}

TEST(Tokenizer, ParseSpecialFalseNeverYieldsSpecialIds) {
  const std::string text = "<|im_start|>user\nhi<|im_end|><|endoftext|>";
  const auto parsed = qwen().encode(text);
  EXPECT_EQ(parsed.front(), 151644);
  for (const int32_t id : qwen().encode(text, {.add_special_tokens = true, .parse_special = false}))
    EXPECT_FALSE(qwen().is_special(id)) << id;
}

std::vector<std::string> stream_pieces(const Tokenizer& t, const std::vector<int32_t>& ids,
                                       bool skip = false) {
  StreamingDetokenizer d(t, skip);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) pieces.push_back(d.push(id));
  pieces.push_back(d.flush());
  return pieces;
}

std::string join(const std::vector<std::string>& pieces) {
  std::string all;
  for (const auto& p : pieces) all += p;
  return all;
}

TEST(StreamingDetokenizer, QwenMultiBytePiecesNeverSplitACharacter) {
  const std::string text = "héllo 世界 👨‍👩‍👧‍👦 👍🏽 ﷽ done";
  const auto ids = qwen().encode(text);
  const auto pieces = stream_pieces(qwen(), ids);
  for (const auto& p : pieces) EXPECT_TRUE(tok::is_valid_utf8(p)) << p;
  EXPECT_EQ(join(pieces), text);
  EXPECT_EQ(join(pieces), qwen().decode(ids));
}

TEST(StreamingDetokenizer, GemmaByteFallbackRunIsHeldUntilItEnds) {
  const auto byte = [](const char* name) { return *gemma().token_to_id(name); };
  const int32_t a = *gemma().token_to_id("a");
  // <0xE4><0xB8><0xAD> is U+4E2D; the run is judged whole, so nothing comes out before "a".
  const auto pieces = stream_pieces(gemma(), {byte("<0xE4>"), byte("<0xB8>"), byte("<0xAD>"), a});
  EXPECT_EQ(pieces, (std::vector<std::string>{"", "", "", "\xE4\xB8\xAD" "a", ""}));
  // An unfinished run at the end: one U+FFFD per byte, as Hugging Face's ByteFallback.
  EXPECT_EQ(join(stream_pieces(gemma(), {a, byte("<0xE4>"), byte("<0xB8>")})),
            "a" + kFFFD + kFFFD);
}

TEST(StreamingDetokenizer, SkipsSpecialTokensAndRestartsAfterFlush) {
  const auto ids = qwen().encode("<|im_start|>assistant\nok<|im_end|>");
  EXPECT_EQ(join(stream_pieces(qwen(), ids, true)), "assistant\nok");
  StreamingDetokenizer d(qwen());
  const int32_t e4_lead = *qwen().token_to_id("ä");  // byte 0xE4 in the byte-level alphabet
  EXPECT_EQ(d.push(e4_lead), "");
  EXPECT_EQ(d.flush(), kFFFD);
  EXPECT_EQ(d.push(*qwen().token_to_id("ok")), "ok");
}

TEST(Tokenizer, ConcurrentEncodeMatchesSerial) {
  std::vector<std::string> docs;
  for (int i = 0; i < 200; ++i)
    docs.push_back("document " + std::to_string(i) + ": naïve café 東京 " + std::string(i % 7, ' ') +
                   "<|im_end|> x" + std::to_string(i * 7919));
  std::vector<std::vector<int32_t>> serial;
  for (const auto& d : docs) serial.push_back(qwen().encode(d));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < docs.size(); ++i)
          if (qwen().encode(docs[i]) != serial[i]) ++failures[size_t(t)];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace fp4llm
