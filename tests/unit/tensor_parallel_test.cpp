// Tensor-parallel partitioning (issue 8), on the CPU: every rank's heads, KV heads and MLP
// columns, and NVFP4 shards whose products reassemble the unsplit product (column-parallel:
// exactly; row-parallel: up to float summation order).
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <random>
#include <thread>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cpu/thread_collective.hpp"
#include "model/tensor_parallel.hpp"
#include "random_nvfp4.hpp"
#include "util/error.hpp"

using namespace fp4llm;

namespace {

ModelConfig qwen3_8b() {
  return ModelConfig::from_json({{"architectures", {"Qwen3ForCausalLM"}}, {"hidden_size", 4096}, {"intermediate_size", 12288},
                                 {"num_hidden_layers", 36}, {"num_attention_heads", 32}, {"num_key_value_heads", 8},
                                 {"head_dim", 128}, {"vocab_size", 151936}, {"max_position_embeddings", 40960}});
}

ModelConfig gemma3_270m() {
  return ModelConfig::from_json({{"architectures", {"Gemma3ForCausalLM"}}, {"hidden_size", 640}, {"intermediate_size", 2048},
                                 {"num_hidden_layers", 18}, {"num_attention_heads", 4}, {"num_key_value_heads", 1},
                                 {"head_dim", 256}, {"vocab_size", 262144}, {"sliding_window", 512},
                                 {"query_pre_attn_scalar", 256}, {"max_position_embeddings", 32768}});
}

std::string error_of(const ModelConfig& c, int64_t size) {
  try {
    TensorParallelPlan::make(c, size);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TensorParallelPlan, HeadsColumnsAndVocabularyCoverTheModelOnce) {
  const ModelConfig c = qwen3_8b();
  for (int64_t n : {1, 2, 4, 8, 16, 32}) {
    const TensorParallelPlan p = TensorParallelPlan::make(c, n);
    EXPECT_EQ(p.kv_replicated, n > 8) << n;
    int64_t q = 0, mlp = 0, vocab = 0;
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_EQ(p.q_rows(c, r).begin, q);
      q = p.q_rows(c, r).end;
      EXPECT_EQ(p.mlp_rows(r).begin, mlp);
      mlp = p.mlp_rows(r).end;
      EXPECT_EQ(p.mlp_rows(r).size() % 16, 0);
      EXPECT_EQ(p.vocab_rows(r).begin, vocab);
      vocab = p.vocab_rows(r).end;
      // Each local query head's KV head (global head / group size) is one this rank holds.
      const auto kv = p.kv_rows(c, r);
      for (int64_t h = r * p.heads_per_rank; h < (r + 1) * p.heads_per_rank; ++h) {
        const int64_t kv_head = h / (c.num_heads / c.num_kv_heads);
        EXPECT_GE(kv_head * c.head_dim, kv.begin) << n << " rank " << r;
        EXPECT_LT(kv_head * c.head_dim, kv.end) << n << " rank " << r;
      }
    }
    EXPECT_EQ(q, c.num_heads * c.head_dim);
    EXPECT_EQ(mlp, c.intermediate_size);
    EXPECT_EQ(vocab, c.vocab_size);
  }
}

TEST(TensorParallelPlan, RefusesWhatDoesNotDivideNamingIt) {
  EXPECT_NE(error_of(qwen3_8b(), 3).find("32 attention heads"), std::string::npos);
  EXPECT_NE(error_of(gemma3_270m(), 8).find("4 attention heads"), std::string::npos);
  EXPECT_NE(error_of(qwen3_8b(), 0).find("at least 1"), std::string::npos);
  EXPECT_EQ(error_of(gemma3_270m(), 4), "");  // one KV head, replicated on 4 ranks
  EXPECT_TRUE(TensorParallelPlan::make(gemma3_270m(), 4).kv_replicated);
}

TEST(TensorParallelShards, ReassembleTheUnsplitProduct) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t out = 96, in = 256, rows = 3;
  const QuantizedLinear w = test_support::random_nvfp4(out, in, rng);
  std::vector<float> x(static_cast<size_t>(rows * in)), full(static_cast<size_t>(rows * out));
  for (float& v : x) v = normal(rng);
  cpu::linear(w, x.data(), rows, full.data());
  for (int64_t n : {2, 4}) {
    // Column-parallel: each rank's output rows are exactly the unsplit ones.
    for (int64_t r = 0; r < n; ++r) {
      const QuantizedLinear s = shard_rows(w, r * out / n, (r + 1) * out / n);
      std::vector<float> y(static_cast<size_t>(rows * s.out_features));
      cpu::linear(s, x.data(), rows, y.data());
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t o = 0; o < s.out_features; ++o)
          ASSERT_EQ(y[size_t(m * s.out_features + o)], full[size_t(m * out + r * out / n + o)]);
    }
    // Row-parallel: partial products over input slices sum to the unsplit product.
    std::vector<float> sum(full.size(), 0.0f);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t k0 = r * in / n, k1 = (r + 1) * in / n;
      const QuantizedLinear s = shard_columns(w, k0, k1);
      std::vector<float> xs(static_cast<size_t>(rows * (k1 - k0))), y(full.size());
      for (int64_t m = 0; m < rows; ++m)
        std::copy_n(&x[size_t(m * in + k0)], k1 - k0, &xs[size_t(m * (k1 - k0))]);
      cpu::linear(s, xs.data(), rows, y.data());
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += y[i];
    }
    for (size_t i = 0; i < sum.size(); ++i) ASSERT_NEAR(sum[i], full[i], 1e-4f * (1.0f + std::fabs(full[i])));
  }
  EXPECT_THROW(shard_columns(w, 8, 64), Error);  // not whole blocks
  EXPECT_THROW(shard_rows(w, 0, out + 1), Error);
}

namespace {

// A one-layer Qwen3 model of random NVFP4 projections and a tied BF16 embedding table.
struct TinyModel {
  std::vector<QuantizedLinear> linears;
  TensorView embed;
  ModelWeights weights;

  TinyModel(int64_t kv_heads, std::mt19937& rng) {
    const int64_t H = 64, D = 16, heads = 4, inter = 64, vocab = 32;
    weights.config = ModelConfig::from_json({{"architectures", {"Qwen3ForCausalLM"}}, {"hidden_size", H},
                                             {"intermediate_size", inter}, {"num_hidden_layers", 1},
                                             {"num_attention_heads", heads}, {"num_key_value_heads", kv_heads},
                                             {"head_dim", D}, {"vocab_size", vocab}, {"max_position_embeddings", 64},
                                             {"tie_word_embeddings", true}});
    const std::vector<std::pair<int64_t, int64_t>> shapes = {{heads * D, H}, {kv_heads * D, H}, {kv_heads * D, H},
                                                             {H, heads * D}, {inter, H},         {inter, H},
                                                             {H, inter}};
    linears.reserve(shapes.size());
    for (const auto& [out, in] : shapes) linears.push_back(test_support::random_nvfp4(out, in, rng));
    std::vector<uint8_t> table(static_cast<size_t>(vocab * H * 2));
    for (auto& b : table) b = uint8_t(rng());
    embed = {"model.embed_tokens.weight", DType::BF16, {vocab, H}, Bytes::owned(std::move(table)), {}};
    weights.embed = weights.lm_head = &embed;
    LayerWeights L;
    LinearWeight* roles[] = {&L.q, &L.k, &L.v, &L.o, &L.mlp.gate, &L.mlp.up, &L.mlp.down};
    for (size_t i = 0; i < linears.size(); ++i) *roles[i] = {&linears[i], nullptr, linears[i].out_features, linears[i].in_features};
    L.input_norm = std::vector<float>(size_t(H), 1.0f);
    weights.layers.push_back(L);
  }
};

std::vector<float> row_of(const QuantizedLinear& q, int64_t row) {
  std::vector<float> v(static_cast<size_t>(q.in_features));
  q.dequantize_row(row, v.data());
  return v;
}

}  // namespace

// Each rank's model holds exactly its plan's rows and columns of every projection, its
// vocabulary rows of the (tied) lm_head, and the full embedding table.
TEST(TensorParallelShards, RankWeightsFollowThePlan) {
  std::mt19937 rng(8);
  for (int64_t kv_heads : {2, 1}) {  // 1: the KV head replicated on both ranks
    const TinyModel m(kv_heads, rng);
    const ModelConfig& c = m.weights.config;
    const TensorParallelPlan plan = TensorParallelPlan::make(c, 2);
    for (int64_t r = 0; r < 2; ++r) {
      const auto shard = shard_weights(m.weights, plan, r);
      const ModelWeights& w = shard->weights;
      EXPECT_EQ(w.config.num_heads, 2);
      EXPECT_EQ(w.config.num_kv_heads, 1);
      EXPECT_EQ(w.config.intermediate_size, 32);
      EXPECT_EQ(w.config.vocab_size, c.vocab_size);
      EXPECT_EQ(w.embed, m.weights.embed);
      ASSERT_NE(w.lm_head, w.embed);
      EXPECT_EQ(w.lm_head->shape, (std::vector<int64_t>{16, 64}));
      EXPECT_EQ(w.lm_head->data.data(), m.embed.data.data() + r * 16 * 64 * 2);
      const LayerWeights& L = w.layers[0];
      const LayerWeights& full = m.weights.layers[0];
      const int64_t kv_head = kv_heads == 2 ? r : 0;
      for (int64_t i = 0; i < 32; ++i) {
        ASSERT_EQ(row_of(*L.q.nvfp4, i), row_of(*full.q.nvfp4, r * 32 + i));
        ASSERT_EQ(row_of(*L.mlp.gate.nvfp4, i), row_of(*full.mlp.gate.nvfp4, r * 32 + i));
        ASSERT_EQ(row_of(*L.mlp.up.nvfp4, i), row_of(*full.mlp.up.nvfp4, r * 32 + i));
      }
      for (int64_t i = 0; i < 16; ++i) {
        ASSERT_EQ(row_of(*L.k.nvfp4, i), row_of(*full.k.nvfp4, kv_head * 16 + i));
        ASSERT_EQ(row_of(*L.v.nvfp4, i), row_of(*full.v.nvfp4, kv_head * 16 + i));
      }
      for (int64_t i = 0; i < 64; ++i) {  // row-parallel: the rank's slice of every row
        const std::vector<float> o = row_of(*full.o.nvfp4, i), down = row_of(*full.mlp.down.nvfp4, i);
        ASSERT_EQ(row_of(*L.o.nvfp4, i), std::vector<float>(o.begin() + r * 32, o.begin() + r * 32 + 32));
        ASSERT_EQ(row_of(*L.mlp.down.nvfp4, i), std::vector<float>(down.begin() + r * 32, down.begin() + r * 32 + 32));
      }
    }
  }
}

TEST(TensorParallelPlan, RefusesAVocabularyThatDoesNotDivide) {
  ModelConfig c = qwen3_8b();
  c.vocab_size = 151937;
  EXPECT_NE(error_of(c, 2).find("vocabulary of 151937"), std::string::npos);
}

// A one-layer Qwen3-MoE model of 4 random experts (hidden 64, expert width 32), over TinyModel's
// attention weights.
struct TinyMoe {
  TinyModel m;
  std::deque<QuantizedLinear> experts;
  MoeWeights moe;
  explicit TinyMoe(std::mt19937& rng) : m(2, rng) {
    nlohmann::json j = {{"architectures", {"Qwen3MoeForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 64},
                        {"moe_intermediate_size", 32}, {"num_experts", 4}, {"num_experts_per_tok", 2},
                        {"norm_topk_prob", true}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
                        {"num_key_value_heads", 2}, {"head_dim", 16}, {"vocab_size", 32},
                        {"max_position_embeddings", 64}, {"tie_word_embeddings", true}};
    m.weights.config = ModelConfig::from_json(j);
    moe.router.assign(4 * 64, 0.5f);
    for (int e = 0; e < 4; ++e) {
      MlpWeights w;
      for (LinearWeight* role : {&w.gate, &w.up, &w.down}) {
        const bool down = role == &w.down;
        experts.push_back(test_support::random_nvfp4(down ? 64 : 32, down ? 32 : 64, rng));
        *role = {&experts.back(), nullptr, experts.back().out_features, experts.back().in_features};
      }
      moe.experts.push_back(w);
    }
    m.weights.layers[0].moe = moe;
  }
};

// --enable-expert-parallel: each rank keeps whole experts (a contiguous run), the full router,
// and still splits attention by heads; experts that do not divide are refused by name.
TEST(TensorParallelShards, ExpertParallelKeepsWholeExpertsPerRank) {
  std::mt19937 rng(9);
  TinyMoe t(rng);
  ASSERT_TRUE(t.m.weights.config.layer_moe[0]);
  const TensorParallelPlan plan = TensorParallelPlan::make(t.m.weights.config, 2, /*expert_parallel=*/true);
  EXPECT_EQ(plan.experts_per_rank, 2);
  for (int64_t r = 0; r < 2; ++r) {
    const auto shard = shard_weights(t.m.weights, plan, r);
    const LayerWeights& L = shard->weights.layers[0];
    ASSERT_TRUE(L.moe.has_value());
    EXPECT_EQ(L.moe->first_expert, 2 * r);
    ASSERT_EQ(L.moe->experts.size(), 2u);
    for (int64_t e = 0; e < 2; ++e) EXPECT_EQ(L.moe->experts[size_t(e)].gate.nvfp4, t.moe.experts[size_t(2 * r + e)].gate.nvfp4);
    EXPECT_EQ(L.moe->router, t.moe.router);
    EXPECT_EQ(shard->weights.config.num_experts, 4);  // every rank routes over all experts
    EXPECT_EQ(shard->weights.config.moe_intermediate_size, 32);
    EXPECT_EQ(row_of(*L.q.nvfp4, 0), row_of(*t.m.weights.layers[0].q.nvfp4, r * 32));
  }
  ModelConfig three = t.m.weights.config;
  three.num_experts = 3;
  try {
    TensorParallelPlan::make(three, 2, true);
    ADD_FAILURE() << "3 experts over 2 ranks accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 experts"), std::string::npos) << e.what();
  }
}

// The default, as in vLLM: every rank holds every expert, with its share of the expert's
// intermediate columns (gate/up rows, down input features) like a dense MLP; an expert width
// that does not split into whole 16-value blocks is refused by name.
TEST(TensorParallelShards, ExpertsAreShardedByColumnsByDefault) {
  std::mt19937 rng(10);
  TinyMoe t(rng);
  const TensorParallelPlan plan = TensorParallelPlan::make(t.m.weights.config, 2);
  EXPECT_FALSE(plan.expert_parallel);
  EXPECT_EQ(plan.moe_intermediate_per_rank, 16);
  for (int64_t r = 0; r < 2; ++r) {
    const auto shard = shard_weights(t.m.weights, plan, r);
    const LayerWeights& L = shard->weights.layers[0];
    ASSERT_TRUE(L.moe.has_value());
    EXPECT_EQ(L.moe->first_expert, 0);
    ASSERT_EQ(L.moe->experts.size(), 4u);
    EXPECT_EQ(shard->weights.config.moe_intermediate_size, 16);
    EXPECT_EQ(shard->weights.config.num_experts, 4);
    for (size_t e = 0; e < 4; ++e) {
      const MlpWeights& mine = L.moe->experts[e];
      const MlpWeights& full = t.moe.experts[e];
      ASSERT_EQ(mine.gate.nvfp4->out_features, 16);
      ASSERT_EQ(mine.down.nvfp4->in_features, 16);
      for (int64_t i = 0; i < 16; ++i) {
        ASSERT_EQ(row_of(*mine.gate.nvfp4, i), row_of(*full.gate.nvfp4, r * 16 + i));
        ASSERT_EQ(row_of(*mine.up.nvfp4, i), row_of(*full.up.nvfp4, r * 16 + i));
      }
      for (int64_t i = 0; i < 64; ++i) {
        const std::vector<float> down = row_of(*full.down.nvfp4, i), part = row_of(*mine.down.nvfp4, i);
        ASSERT_EQ(part, std::vector<float>(down.begin() + r * 16, down.begin() + (r + 1) * 16)) << "expert " << e;
      }
    }
  }
  ModelConfig narrow = t.m.weights.config;
  narrow.moe_intermediate_size = 48;  // 24 per rank: not whole blocks
  try {
    TensorParallelPlan::make(narrow, 2);
    ADD_FAILURE() << "expert width 48 over 2 ranks accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("intermediate size 48"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(TensorParallelPlan::make(narrow, 2, /*expert_parallel=*/true));
}

// The CPU ranks' collectives (backend/cpu/thread_collective): sums in rank order on every rank,
// gathers in rank order, many rounds in a row, and a failing rank releases the waiting ones.
namespace {

// Runs f(rank) on `n` threads at once.
template <typename F>
void on_threads(int64_t n, F f) {
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < n; ++r) threads.emplace_back(f, r);
  for (auto& t : threads) t.join();
}

}  // namespace

TEST(ThreadCollective, SumsAndGathersInRankOrderOverManyRounds) {
  for (int64_t n : {1, 2, 3, 4}) {
    cpu::ThreadCollective group(n);
    constexpr size_t kCount = 37;
    constexpr int kRounds = 50;
    // Rank r's value i in round k; the sum is formed here independently, in rank order.
    const auto value = [](int64_t r, size_t i, int k) { return float(std::sin(double(r * 131 + int64_t(i) * 7 + k))); };
    std::vector<std::vector<float>> sums(static_cast<size_t>(n)), gathers(static_cast<size_t>(n));
    on_threads(n, [&](int64_t r) {
      for (int k = 0; k < kRounds; ++k) {
        std::vector<float> data(kCount), gathered(kCount * size_t(n));
        for (size_t i = 0; i < kCount; ++i) data[i] = value(r, i, k);
        group.all_gather(r, data.data(), gathered.data(), kCount);
        group.all_reduce_sum(r, data.data(), kCount);
        if (k == kRounds - 1) {
          sums[size_t(r)] = data;
          gathers[size_t(r)] = gathered;
        }
      }
    });
    for (int64_t r = 0; r < n; ++r) {
      for (size_t i = 0; i < kCount; ++i) {
        float expected = value(0, i, kRounds - 1);
        for (int64_t q = 1; q < n; ++q) expected += value(q, i, kRounds - 1);
        EXPECT_EQ(sums[size_t(r)][i], expected) << n << " ranks, rank " << r << " value " << i;
        for (int64_t q = 0; q < n; ++q)
          EXPECT_EQ(gathers[size_t(r)][size_t(q) * kCount + i], value(q, i, kRounds - 1)) << n << " " << r;
      }
    }
  }
}

TEST(ThreadCollective, AFailingRankReleasesTheOthers) {
  cpu::ThreadCollective group(3);
  std::vector<int> released(3, 0);
  on_threads(3, [&](int64_t r) {
    if (r == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the others are waiting by now
      group.abort();
      return;
    }
    float x = 1;
    try {
      group.all_reduce_sum(r, &x, 1);
    } catch (const cpu::PeerRankFailed&) {
      released[size_t(r)] = 1;
    }
  });
  EXPECT_EQ(released, (std::vector<int>{1, 0, 1}));
  float x = 1;
  EXPECT_THROW(group.all_reduce_sum(0, &x, 1), cpu::PeerRankFailed);  // aborted until reset
  group.reset();
  std::vector<float> v(3, 0.0f);
  on_threads(3, [&](int64_t r) {
    float y = float(r + 1);
    group.all_reduce_sum(r, &y, 1);
    v[size_t(r)] = y;
  });
  EXPECT_EQ(v, (std::vector<float>{6, 6, 6}));
}

TEST(ThreadCollective, RefusesAnEmptyGroup) { EXPECT_THROW(cpu::ThreadCollective(0), Error); }
