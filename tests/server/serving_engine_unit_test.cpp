// The serving engine's bookkeeping on its own: block reference counts and prefix reuse, the
// scheduler's budgets, chunking and preemption, the sliding layers' window pool, stop strings and
// the reasoning splitter, with
// expected values worked out by hand in each test.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <set>

#include "engine/block_manager.hpp"
#include "engine/kv_cache_plan.hpp"
#include "engine/scheduler.hpp"
#include "engine/stop_string_matcher.hpp"
#include "server/reasoning_splitter.hpp"
#include "util/error.hpp"

namespace fp4llm {
namespace {

std::vector<int32_t> iota_tokens(int n, int start = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(BlockManager, AllocatesEveryBlockOnceThenRefuses) {
  BlockManager m(3);
  std::set<int32_t> got;
  for (int i = 0; i < 3; ++i) got.insert(*m.allocate());
  EXPECT_EQ(got, (std::set<int32_t>{0, 1, 2}));
  EXPECT_FALSE(m.allocate().has_value());
  EXPECT_EQ(m.num_used(), 3);
  m.release(1);
  EXPECT_EQ(m.num_free(), 1);
  EXPECT_EQ(*m.allocate(), 1);
}

TEST(BlockManager, ReleasingTooOftenIsAnError) {
  BlockManager m(1);
  const int32_t b = *m.allocate();
  m.release(b);
  EXPECT_THROW(m.release(b), Error);
}

TEST(BlockManager, CachedBlockIsSharedAndSurvivesUntilReused) {
  BlockManager m(2);
  const auto toks = iota_tokens(16);
  const uint64_t h = block_hash(kNoParentHash, toks);
  const int32_t b = *m.allocate();
  m.register_full(b, h, kNoParentHash, toks);
  // Shared while referenced: two references, one block used.
  EXPECT_EQ(*m.acquire_cached(h, kNoParentHash, toks), b);
  EXPECT_EQ(m.ref_count(b), 2);
  m.release(b);
  m.release(b);
  EXPECT_EQ(m.num_used(), 0);
  // Free but still cached: a later request finds it.
  EXPECT_EQ(*m.acquire_cached(h, kNoParentHash, toks), b);
  m.release(b);
  // Two fresh allocations take both blocks (the other free block first); the cached one loses its hash.
  const int32_t first = *m.allocate();
  EXPECT_NE(first, b);
  EXPECT_EQ(*m.allocate(), b);
  EXPECT_FALSE(m.acquire_cached(h, kNoParentHash, toks).has_value());
}

TEST(BlockManager, HashCollisionIsNotAHit) {
  BlockManager m(2);
  const auto toks = iota_tokens(16), other = iota_tokens(16, 1);
  const int32_t b = *m.allocate();
  m.register_full(b, 42, kNoParentHash, toks);
  EXPECT_FALSE(m.acquire_cached(42, kNoParentHash, other).has_value());
  EXPECT_FALSE(m.acquire_cached(42, 7, toks).has_value());
}

TEST(BlockHash, DependsOnTheWholePrefix) {
  const auto a = iota_tokens(16), b = iota_tokens(16, 100);
  EXPECT_NE(block_hash(block_hash(kNoParentHash, a), b), block_hash(block_hash(kNoParentHash, b), b));
  EXPECT_EQ(block_hash(kNoParentHash, a), block_hash(kNoParentHash, iota_tokens(16)));
}

TEST(StopStringMatcher, HoldsBackPossibleStartsAndCutsAtTheStop) {
  StopStringMatcher m({"STOP", "xyz"});
  EXPECT_EQ(m.push("hello S"), "hello ");  // "S" may begin STOP
  EXPECT_EQ(m.push("T"), "");
  EXPECT_EQ(m.push("x"), "ST");  // "STx" is not STOP, but "x" may begin "xyz"
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("yz!"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopStringMatcher, StopSpanningPieces) {
  StopStringMatcher m({"</end>"});
  EXPECT_EQ(m.push("abc</"), "abc");
  EXPECT_EQ(m.push("en"), "");
  EXPECT_EQ(m.push("d>tail"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStringMatcher, FlushReturnsHeldText) {
  StopStringMatcher m({"abc"});
  EXPECT_EQ(m.push("xxab"), "xx");
  EXPECT_EQ(m.flush(), "ab");
}

TEST(StopStringMatcher, EarliestOfSeveralStops) {
  StopStringMatcher m({"world", "lo"});
  EXPECT_EQ(m.push("hello world"), "hel");
  EXPECT_TRUE(m.stopped());
}

TEST(ReasoningSplitter, SplitsThinkBlockAcrossPieces) {
  server::ReasoningSplitter s(true, false);
  std::string reasoning, content;
  for (const char* piece : {"<th", "ink>\nI should", " greet.</th", "ink>\n\nHello", "!"}) {
    auto d = s.push(piece);
    reasoning += d.reasoning;
    content += d.content;
  }
  auto d = s.flush();
  reasoning += d.reasoning;
  content += d.content;
  EXPECT_EQ(reasoning, "\nI should greet.");
  EXPECT_EQ(content, "\n\nHello!");
}

TEST(ReasoningSplitter, NoThinkIsAllContent) {
  server::ReasoningSplitter s(true, false);
  auto d = s.push("Hello <think> there");
  EXPECT_EQ(d.content, "Hello <think> there");
  EXPECT_EQ(d.reasoning, "");
}

TEST(ReasoningSplitter, PromptOpenedThinking) {
  server::ReasoningSplitter s(true, true);
  auto d = s.push("hmm</think>answer");
  EXPECT_EQ(d.reasoning, "hmm");
  EXPECT_EQ(d.content, "answer");
}

TEST(ReasoningSplitter, DisabledPassesEverything) {
  server::ReasoningSplitter s(false, false);
  EXPECT_EQ(s.push("<think>a</think>b").content, "<think>a</think>b");
}

TEST(KvCachePlan, ParsesSizes) {
  EXPECT_EQ(parse_byte_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_byte_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_byte_size("1.5GB"), 1500000000ull);
  EXPECT_EQ(parse_byte_size("1000"), 1000ull);
  EXPECT_THROW(parse_byte_size("lots"), Error);
  EXPECT_THROW(parse_byte_size("2XB"), Error);
  EXPECT_THROW(parse_byte_size(""), Error);
}

TEST(KvCachePlan, BlocksFromMemoryAndLengthChecks) {
  ModelConfig c;
  c.num_layers = 2;
  c.num_kv_heads = 1;
  c.head_dim = 16;
  c.max_position_embeddings = 4096;
  // One block: 2 layers x (K + V) x 1 head x 16 dims x 16 tokens x 1 byte = 1024 B.
  KvCacheOptions o;
  o.memory_bytes = 10 * 1024 + 1000;
  const auto plan = plan_kv_cache(c, o);
  EXPECT_EQ(plan.bytes_per_block, 1024u);
  EXPECT_EQ(plan.cache.num_blocks, 10);
  EXPECT_EQ(plan.max_model_len, 160);  // capped by the cache
  o.max_model_len = 161;
  EXPECT_THROW(plan_kv_cache(c, o), Error);
  o.dtype = KvCacheDtype::Bf16;
  o.max_model_len = 80;
  EXPECT_EQ(plan_kv_cache(c, o).cache.num_blocks, 5);
  o.memory_bytes = 100;
  EXPECT_THROW(plan_kv_cache(c, o), Error);
}

// The window arithmetic the scheduler, run's ring and the bench share (backend.hpp), by hand for a
// 40-token window and 16-token blocks, then the ring's bound checked against every chunk it serves.
TEST(WindowBlocks, CountsTheBlocksAWindowSees) {
  EXPECT_EQ(first_window_block(40, 0), 0);
  EXPECT_EQ(first_window_block(40, 39), 0);   // sees positions 0..39
  EXPECT_EQ(first_window_block(40, 55), 1);   // 16..55
  EXPECT_EQ(first_window_block(40, 100), 3);  // 61..100
  EXPECT_EQ(first_window_block(1, 100), 6);   // only itself
  EXPECT_EQ(window_blocks_needed(40, 100, 1), 4);  // blocks 3..6
  EXPECT_EQ(window_blocks_needed(40, 100, 64), 8);  // 61..163: blocks 3..10
  // A ring for chunks of up to 64 tokens: ceil((39 + 64) / 16) + 1 = 8 blocks, capped by the
  // sequence's own 5.
  EXPECT_EQ(window_ring_blocks(40, 64, 100), 8);
  EXPECT_EQ(window_ring_blocks(40, 64, 5), 5);
  for (int64_t window : {1, 15, 16, 17, 40, 1024})
    for (int64_t chunk : {1, 7, 16, 64, 100})
      for (int64_t start = 0; start < 300; ++start)
        for (int64_t tokens = 1; tokens <= chunk; ++tokens)
          ASSERT_LE(window_blocks_needed(window, start, tokens), window_ring_blocks(window, chunk, 1 << 20))
              << "window " << window << " chunk " << chunk << " start " << start << " tokens " << tokens;
}

TEST(KvCachePlan, SlidingLayersGetAWindowPoolSizedForTheScheduler) {
  ModelConfig c;
  c.num_layers = 6;
  c.layer_sliding = {true, true, true, true, true, false};
  c.sliding_window = 40;
  c.num_kv_heads = 1;
  c.head_dim = 16;
  c.max_position_embeddings = 100000;
  // One layer's block: (K + V) x 1 head x 16 dims x 16 tokens x 1 byte = 512 B. Two sequences of
  // at most 64 tokens a step: each holds ceil(39 / 16) + 2 = 5 blocks, plus 64 / 16 = 4.
  KvCacheOptions o;
  o.max_num_seqs = 2;
  o.max_num_batched_tokens = 64;
  EXPECT_EQ(window_pool_blocks(40, 2, 64), 14);
  o.memory_bytes = 14 * 5 * 512 + 100 * 512 + 100;
  auto plan = plan_kv_cache(c, o);
  EXPECT_EQ(plan.bytes_per_block, 512u);
  EXPECT_EQ(plan.bytes_per_window_block, 5 * 512u);
  EXPECT_EQ(plan.cache.num_window_blocks, 14);
  EXPECT_EQ(plan.cache.num_blocks, 100);
  EXPECT_EQ(plan.max_model_len, 1600);
  EXPECT_NE(plan.describe(c).find("5 sliding-window layers keep only their 40-token window"), std::string::npos);
  // Too little for the window pool beside a larger main pool: as many blocks in each.
  o.memory_bytes = 10 * 6 * 512 + 5;
  plan = plan_kv_cache(c, o);
  EXPECT_EQ(plan.cache.num_blocks, 10);
  EXPECT_EQ(plan.cache.num_window_blocks, 10);
  // --max-model-len 20, under the window: a sequence holds at most the blocks of 20 tokens, so the
  // pool is sized as for a 20-token window: 2 x (ceil(19 / 16) + 2) + 4 = 12.
  o.memory_bytes = 14 * 5 * 512 + 100 * 512 + 100;
  o.max_model_len = 20;
  plan = plan_kv_cache(c, o);
  EXPECT_EQ(plan.cache.num_window_blocks, 12);
  EXPECT_EQ(plan.cache.num_blocks, (14 * 5 * 512 + 100 * 512 + 100 - 12 * 5 * 512) / 512);
  o.max_model_len.reset();
  // --disable-hybrid-kv-cache-manager: one pool of six-layer blocks.
  o.window_pool = false;
  o.memory_bytes = 14 * 5 * 512 + 100 * 512 + 100;
  plan = plan_kv_cache(c, o);
  EXPECT_EQ(plan.cache.num_window_blocks, 0);
  EXPECT_EQ(plan.cache.num_blocks, (14 * 5 * 512 + 100 * 512 + 100) / (6 * 512));
}

const Tokenizer& qwen3_tokenizer() {
  static const Tokenizer t = [] {
    const char* shared = std::getenv("FP4LLM_SHARED_DIR");
    if (!shared) throw Error("FP4LLM_SHARED_DIR is not set (run through ctest)");
    return Tokenizer::load(std::filesystem::path(shared) / "testdata/tokenizers/qwen3");
  }();
  return t;
}

std::unique_ptr<Sequence> sequence(uint64_t id, std::vector<int32_t> prompt, int64_t max_tokens = 100) {
  EngineRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  return std::make_unique<Sequence>(id, 0, std::move(r), std::make_shared<RequestStream>(), qwen3_tokenizer(),
                                    4096, id);
}

// Runs a schedule as if the model computed it: marks the chunks and samples token 7 for every
// sequence whose prompt is complete.
std::vector<ScheduledChunk> step(Scheduler& s) {
  auto chunks = s.schedule();
  for (const auto& c : chunks) {
    s.mark_computed(c);
    if (c.sequence->num_uncomputed() == 0) c.sequence->accept(GeneratedToken{7, 0, {}});
  }
  s.remove_if([](Sequence&) { return false; });
  return chunks;
}

TEST(Scheduler, TokenBudgetChunksPrefillAndCapsSequences) {
  BlockManager blocks(100);
  Scheduler s({/*max_num_seqs=*/2, /*max_num_batched_tokens=*/64, true}, blocks);
  s.add(sequence(1, iota_tokens(40)));
  s.add(sequence(2, iota_tokens(40, 1000)));
  s.add(sequence(3, iota_tokens(10, 2000)));
  auto c = step(s);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].num_tokens, 40);
  EXPECT_EQ(c[1].num_tokens, 24);  // the rest of the budget: a chunk of the second prompt
  EXPECT_EQ(s.num_running(), 2);
  EXPECT_EQ(s.num_waiting(), 1);   // --max-num-seqs 2
  c = step(s);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].num_tokens, 1);   // decode
  EXPECT_EQ(c[1].num_tokens, 16);  // the end of the second prompt
  EXPECT_EQ(blocks.num_used(), 3 + 3);
}

TEST(Scheduler, PreemptsTheLatestWhenBlocksRunOutAndRecomputesIt) {
  BlockManager blocks(4);  // 64 token slots
  Scheduler s({8, 1000, false}, blocks);
  s.add(sequence(1, iota_tokens(32)));
  s.add(sequence(2, iota_tokens(32, 500)));
  auto c = step(s);  // both prompts: 2 blocks each, all 4 used; each sampled a token
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(blocks.num_free(), 0);
  c = step(s);  // the first needs a third block: the second is preempted
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].sequence->id(), 1u);
  EXPECT_EQ(s.counters().preemptions, 1);
  EXPECT_EQ(s.num_waiting(), 1);
  EXPECT_EQ(blocks.num_used(), 3);
  // The preempted sequence kept its tokens: when it returns it recomputes all 33.
  Sequence* waiting = s.all().back();
  EXPECT_EQ(waiting->tokens().size(), 33u);
  EXPECT_EQ(waiting->num_computed, 0);
}

TEST(Scheduler, ReusesCachedPrefixBlocksButComputesTheLastToken) {
  BlockManager blocks(20);
  Scheduler s({8, 1000, true}, blocks);
  s.add(sequence(1, iota_tokens(40), /*max_tokens=*/1));
  step(s);  // finishes after one token; its two full blocks stay cached
  EXPECT_EQ(blocks.num_used(), 0);
  EXPECT_EQ(blocks.num_cached(), 2);
  auto p = iota_tokens(36);
  p.push_back(9999);
  s.add(sequence(2, p));
  auto c = step(s);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].num_tokens, 37 - 32);
  EXPECT_EQ(s.counters().prefix_hits, 32);
  // A prompt of exactly two blocks may reuse only the first: its last token must be computed.
  s.add(sequence(3, iota_tokens(32)));
  c = step(s);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].num_tokens, 16);
}

// Window pool (sliding window 40): a sequence holds window blocks from the block of the first
// position its next tokens see; worked by hand: first visible block = max(0, p0 - 39) / 16.
ModelConfig window_model() {
  ModelConfig c;
  c.num_layers = 2;
  c.layer_sliding = {true, false};
  c.sliding_window = 40;
  c.vocab_size = 200000;
  return c;
}

KvCacheConfig window_cache(int64_t blocks, int64_t window_blocks) {
  KvCacheConfig k;
  k.num_blocks = blocks;
  k.num_window_blocks = window_blocks;
  return k;
}

// The chunk as the engine hands it to a backend; check_batch verifies that the window entries the
// chunk sees are distinct blocks of the pool.
void check_chunk(const ScheduledChunk& c, const KvCacheConfig& cache) {
  const Sequence& s = *c.sequence;
  ForwardBatch b;
  b.sequences.push_back({std::span(s.tokens()).subspan(size_t(s.num_computed), size_t(c.num_tokens)), s.num_computed,
                         s.block_table, s.window_table});
  check_batch(b, window_model(), cache);
}

TEST(SchedulerWindowPool, HoldsOnlyTheBlocksTheNextTokensSee) {
  BlockManager blocks(100), window(100);
  Scheduler s({4, 1000, true, 40}, blocks, &window);
  s.add(sequence(1, iota_tokens(100), /*max_tokens=*/40));
  auto c = s.schedule();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].num_tokens, 100);
  EXPECT_EQ(window.num_used(), 7);  // positions 0..99: token 0 sees block 0, token 99 block 6
  check_chunk(c[0], window_cache(100, 100));
  s.mark_computed(c[0]);
  c[0].sequence->accept(GeneratedToken{7, 0, {}});
  // Decoding position 100: it sees 61..100, blocks 3..6; blocks 0..2 go back.
  c = s.schedule();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(window.num_used(), 4);
  EXPECT_EQ(blocks.num_used(), 7);
  check_chunk(c[0], window_cache(100, 100));
  for (int i = 0; i < 30; ++i) {
    s.mark_computed(c[0]);
    c[0].sequence->accept(GeneratedToken{7, 0, {}});
    c = s.schedule();
    ASSERT_EQ(c.size(), 1u);
    const int64_t p = c[0].sequence->num_computed;
    EXPECT_EQ(window.num_used(), p / 16 - (p - 39) / 16 + 1) << p;
    EXPECT_EQ(blocks.num_used(), p / 16 + 1) << p;
    check_chunk(c[0], window_cache(100, 100));
  }
  s.remove_if([](Sequence&) { return true; });
  EXPECT_EQ(window.num_used(), 0);
  EXPECT_EQ(blocks.num_used(), 0);
}

TEST(SchedulerWindowPool, ChunkedPrefillGivesBackBlocksBehindTheWindow) {
  BlockManager blocks(100), window(100);
  Scheduler s({4, 32, true, 40}, blocks, &window);
  s.add(sequence(1, iota_tokens(200)));
  for (int64_t p0 = 0; p0 < 200; p0 += 32) {
    auto c = s.schedule();
    ASSERT_EQ(c.size(), 1u);
    const int64_t n = std::min<int64_t>(32, 200 - p0);
    EXPECT_EQ(c[0].num_tokens, n);
    // Held: from the block of max(0, p0 - 39) to the block of the chunk's last position.
    EXPECT_EQ(window.num_used(), (p0 + n - 1) / 16 - std::max<int64_t>(0, p0 - 39) / 16 + 1) << p0;
    check_chunk(c[0], window_cache(100, 100));
    s.mark_computed(c[0]);
  }
}

TEST(SchedulerWindowPool, AWindowPoolTooSmallPreemptsLikeTheMainPool) {
  BlockManager blocks(100), window(6);
  Scheduler s({4, 1000, false, 40}, blocks, &window);
  s.add(sequence(1, iota_tokens(40)));  // 3 window blocks
  s.add(sequence(2, iota_tokens(40, 500)));
  auto c = step(s);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(window.num_free(), 0);
  // Position 48 (it sees 9..48) needs a fourth block while still seeing block 0: the later
  // sequence is preempted, in the ninth decode step.
  for (int i = 0; i < 10 && s.counters().preemptions == 0; ++i) step(s);
  EXPECT_EQ(s.counters().preemptions, 1);
  EXPECT_EQ(s.num_running(), 1);
}

TEST(SchedulerWindowPool, PrefixHitNeedsTheWindowOfItsEnd) {
  BlockManager blocks(100), window(9);
  Scheduler s({4, 1000, true, 40}, blocks, &window);
  // 100 prompt tokens, then decoding to position 158. Window blocks go back as the window moves
  // and, with 9 in the pool, position 144 takes the block that held positions 0..15.
  s.add(sequence(1, iota_tokens(100), /*max_tokens=*/60));
  while (s.num_running() + s.num_waiting() > 0) step(s);
  EXPECT_EQ(blocks.num_cached(), 9);  // positions 0..143 in full blocks of the main pool
  // Its first 96 tokens again: blocks 0..5 of the main pool, and the window of position 96
  // (57..96: blocks 3..5) is still cached.
  auto p = iota_tokens(96);
  p.push_back(9999);
  s.add(sequence(2, p, 1));
  auto c = step(s);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].num_tokens, 1);
  EXPECT_EQ(s.counters().prefix_hits, 96);
  // Its first 50 tokens: the main pool has blocks 0..2, but every shorter prefix needs the window
  // copy of block 0 (position 48 sees 9..48), which was overwritten: no hit at all.
  s.add(sequence(3, iota_tokens(50), 1));
  c = s.schedule();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].num_tokens, 50);
  EXPECT_EQ(s.counters().prefix_hits, 96);
  EXPECT_EQ(blocks.num_used(), 4);  // fresh ones: the cached blocks taken while looking went back
  EXPECT_EQ(window.num_used(), 4);
  check_chunk(c[0], window_cache(100, 9));
}

TEST(SchedulerWindowPool, AOneTokenWindowTakesNoWindowBlockFromAPrefixHit) {
  BlockManager blocks(20), window(20);
  Scheduler s({4, 1000, true, 1}, blocks, &window);
  s.add(sequence(1, iota_tokens(20), 1));
  step(s);
  s.add(sequence(2, iota_tokens(20), 1));
  auto c = s.schedule();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(s.counters().prefix_hits, 16);
  EXPECT_EQ(c[0].num_tokens, 4);
  EXPECT_EQ(window.num_used(), 1);  // only the block of positions 16..19
  ModelConfig m = window_model();
  m.sliding_window = 1;
  ForwardBatch b;
  const Sequence& q = *c[0].sequence;
  b.sequences.push_back({std::span(q.tokens()).subspan(16, 4), 16, q.block_table, q.window_table});
  check_batch(b, m, window_cache(20, 20));
}

}  // namespace
}  // namespace fp4llm
