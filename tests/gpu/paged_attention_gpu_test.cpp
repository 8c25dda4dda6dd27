// Paged attention against a float64 softmax written here, over caches filled with random FP8 or
// BF16 values through shuffled block tables: decode tokens deep in a context (split-KV), chunks
// of prefill (causal within the chunk), sliding windows, query groups of 1 to 16 heads.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "backend/cuda/early_launch.hpp"
#include "backend/cuda/flash_prefill.hpp"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/paged_attention.hpp"
#include "formats/number_formats.hpp"
#include "gpu_test_support.hpp"
#include "producer_delay.hpp"

using namespace fp4llm;

namespace {

constexpr int64_t kBlock = 16;

struct Chunk {
  int64_t start, count;  // positions [start, start + count) are new; the cache holds [0, start + count)
};

struct Case {
  int64_t heads, kv_heads, head_dim, window;
  bool fp8;
  float k_scale, v_scale;
  std::vector<Chunk> chunks;
  int64_t splits = 1;
  bool flash = false;  // the tensor-core prefill kernel instead of the paged one
  bool mma = false;    // the tensor-core decode kernel instead of the paged one
  int64_t min_split_keys = 128;
  // The tensor-core decode kernel with the rope kernel's work (decode chunks only): q and the new
  // keys and values come raw from q|k|v rows and the kernel normalises, rotates and stores them.
  bool rope = false;
  bool one_plus = false;  // Gemma3's (1 + w) gains, with rope
  // With rope: the rope kernel instead, launched early behind a kernel that holds the stream for
  // 200 us, then the tensor-core decode kernel launched early behind it with its first cache
  // blocks requested before its wait (cache_blocks_before_wait): whatever it reads before its wait
  // predates the rope kernel's writes.
  bool blocks_before_rope = false;
  cuda::SplitMerge merge = cuda::SplitMerge::kByRows;  // how the last split merges the partial results
};

// The norm's epsilon in the rope cases: large enough (against mean squares of about 9) that a
// kernel ignoring it would miss the BF16 key bound.
constexpr double kRopeEps = 0.5;

// A token's raw q|k|v row after the rope kernel's arithmetic, in float64: RMSNorm of each q and k
// head with its gains, then rotate-half at `pos` with the angle rounded to float32 as the kernels
// compute it. Returns [heads + 2 kv_heads][head_dim].
std::vector<double> roped_row(const float* raw, const Case& c, int64_t pos, const std::vector<float>& q_norm,
                              const std::vector<float>& k_norm, const std::vector<float>& inv_freq) {
  const int64_t D = c.head_dim, half = D / 2, heads = c.heads + 2 * c.kv_heads;
  std::vector<double> out(raw, raw + heads * D);
  for (int64_t h = 0; h < c.heads + c.kv_heads; ++h) {
    double* v = &out[size_t(h * D)];
    const std::vector<float>& w = h < c.heads ? q_norm : k_norm;
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += v[d] * v[d];
    const double inv = 1.0 / std::sqrt(ss / double(D) + kRopeEps);
    for (int64_t d = 0; d < D; ++d) v[d] *= inv * (c.one_plus ? 1.0 + w[size_t(d)] : double(w[size_t(d)]));
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(float(pos) * inv_freq[size_t(i)]);
      const double a = v[i], b = v[i + half];
      v[i] = a * std::cos(angle) - b * std::sin(angle);
      v[i + half] = b * std::cos(angle) + a * std::sin(angle);
    }
  }
  return out;
}

float cache_value(const std::vector<uint8_t>& cache, size_t element, bool fp8) {
  if (fp8) return e4m3_to_float(cache[element]);
  uint16_t b;
  std::memcpy(&b, &cache[2 * element], 2);
  return bf16_to_float(b);
}

// rope: the caches the kernel left (k_gpu, v_gpu) hold each token's new key and value (`roped`,
// float64) in its slot, within the cache format's rounding, and every other byte as before (k, v);
// k and v then take the kernel's values, for the attention reference.
void check_new_keys_and_values(const Case& c, const std::vector<uint8_t>& k_gpu, const std::vector<uint8_t>& v_gpu,
                               std::vector<uint8_t>& k, std::vector<uint8_t>& v, const std::vector<int64_t>& slots,
                               const std::vector<std::vector<double>>& roped) {
  const int64_t D = c.head_dim, esize = c.fp8 ? 1 : 2;
  std::vector<bool> is_new(k.size() / size_t(esize), false);
  for (size_t t = 0; t < slots.size(); ++t)
    for (int64_t h = 0; h < c.kv_heads; ++h)
      for (int64_t d = 0; d < D; ++d) {
        const size_t at = size_t(cuda::cache_row_offset(slots[t], h, c.kv_heads, D, cuda::kv_cache_head_major()) + d);
        is_new[at] = true;
        for (const bool key : {true, false}) {
          const double want = roped[t][size_t((c.heads + (key ? 0 : c.kv_heads) + h) * D + d)];
          const double scale = c.fp8 ? (key ? c.k_scale : c.v_scale) : 1.0;
          const double got = cache_value(key ? k_gpu : v_gpu, at, c.fp8) * scale;
          // E4M3: a step of its 3-bit mantissa and its subnormal step; BF16: half an ulp; both
          // beside float32 arithmetic on values of a few units.
          const double tol = (c.fp8 ? std::ldexp(std::fabs(want), -3) + std::ldexp(scale, -9) : std::ldexp(std::fabs(want), -8)) +
                             1e-5 * (1 + std::fabs(want));
          ASSERT_LE(std::fabs(got - want), tol) << (key ? "key" : "value") << " of token " << t << " kv head " << h
                                                << " dim " << d << ": got " << got << " want " << want;
        }
      }
  for (size_t e = 0; e < is_new.size(); ++e)
    if (!is_new[e])
      for (int64_t b = 0; b < esize; ++b) {
        const size_t at = e * size_t(esize) + size_t(b);
        ASSERT_EQ(k_gpu[at], k[at]) << "key cache byte " << at << " changed outside the new slots";
        ASSERT_EQ(v_gpu[at], v[at]) << "value cache byte " << at << " changed outside the new slots";
      }
  k = k_gpu, v = v_gpu;
}

void run_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t D = c.head_dim, esize = c.fp8 ? 1 : 2;
  // Blocks of all sequences, shuffled so that no table is the identity.
  std::vector<std::vector<int32_t>> tables;
  int64_t blocks = 0, max_blocks = 0;
  for (const Chunk& ch : c.chunks) {
    const int64_t n = (ch.start + ch.count + kBlock - 1) / kBlock;
    tables.emplace_back(static_cast<size_t>(n));
    std::iota(tables.back().begin(), tables.back().end(), int32_t(blocks));
    blocks += n;
    max_blocks = std::max(max_blocks, n);
  }
  std::vector<int32_t> perm(static_cast<size_t>(blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> flat;
  for (auto& t : tables) {
    for (auto& b : t) b = perm[size_t(b)];
    std::vector<int32_t> row = t;
    row.resize(size_t(max_blocks), 0);
    flat.insert(flat.end(), row.begin(), row.end());
  }
  const size_t elements = size_t(blocks * kBlock * c.kv_heads * D);
  std::vector<uint8_t> k(elements * esize), v(elements * esize);
  for (auto* cache : {&k, &v})
    for (size_t i = 0; i < elements; ++i) {
      if (c.fp8) {
        (*cache)[i] = float_to_e4m3(normal(rng));
      } else {
        const uint16_t b = float_to_bf16(normal(rng));
        std::memcpy(&(*cache)[2 * i], &b, 2);
      }
    }
  std::vector<int32_t> positions, token_seq;
  for (size_t s = 0; s < c.chunks.size(); ++s)
    for (int64_t i = 0; i < c.chunks[s].count; ++i) {
      positions.push_back(int32_t(c.chunks[s].start + i));
      token_seq.push_back(int32_t(s));
    }
  const int64_t T = int64_t(positions.size());
  std::vector<float> q(static_cast<size_t>(T * c.heads * D));
  for (float& x : q) x = normal(rng);
  // rope: raw q|k|v rows, gains and frequencies; the reference's q and new keys and values from them
  const int64_t width = (c.heads + 2 * c.kv_heads) * D;
  std::vector<float> qkv, q_norm(static_cast<size_t>(D)), k_norm(static_cast<size_t>(D)), inv_freq(static_cast<size_t>(D / 2));
  std::vector<int64_t> slots;
  std::vector<std::vector<double>> roped;
  if (c.rope) {
    ASSERT_TRUE(c.flash || std::all_of(c.chunks.begin(), c.chunks.end(), [](const Chunk& ch) { return ch.count == 1; }))
        << "decode-kernel rope cases are decode steps";
    qkv.resize(size_t(T * width));
    for (float& x : qkv) x = 3.0f * normal(rng);
    for (auto* w : {&q_norm, &k_norm})
      for (float& x : *w) x = bf16_to_float(float_to_bf16(1.0f + 0.5f * normal(rng)));
    for (int64_t i = 0; i < D / 2; ++i) inv_freq[size_t(i)] = float(1.0 / std::pow(1e6, double(2 * i) / double(D)));
    for (int64_t t = 0; t < T; ++t) {
      const auto& table = tables[size_t(token_seq[size_t(t)])];
      const int64_t pos = positions[size_t(t)];
      slots.push_back(table[size_t(pos / kBlock)] * kBlock + pos % kBlock);
      roped.push_back(roped_row(&qkv[size_t(t * width)], c, pos, q_norm, k_norm, inv_freq));
      for (int64_t i = 0; i < c.heads * D; ++i) q[size_t(t * c.heads * D + i)] = float(roped.back()[size_t(i)]);
    }
  }

  const auto qd = cuda::DeviceBuffer<float>::from_host(q);
  auto kd = cuda::DeviceBuffer<uint8_t>::from_host(k), vd = cuda::DeviceBuffer<uint8_t>::from_host(v);
  const auto pd = cuda::DeviceBuffer<int32_t>::from_host(positions), sd = cuda::DeviceBuffer<int32_t>::from_host(token_seq);
  const auto td = cuda::DeviceBuffer<int32_t>::from_host(flat);
  auto out = test_support::poisoned<__nv_bfloat16>(size_t(T * c.heads * D));
  cuda::DeviceBuffer<float> part_out(size_t(T * c.heads * c.splits * D)), part_ml(size_t(T * c.heads * c.splits * 2));
  auto counters = cuda::DeviceBuffer<unsigned>::zeroed(size_t(T * c.kv_heads));
  cuda::AttentionParams p;
  p.heads = c.heads;
  p.kv_heads = c.kv_heads;
  p.head_dim = D;
  p.window = c.window;
  p.scale = 1.0f / std::sqrt(float(D));
  p.fp8 = c.fp8;
  p.head_major_cache = cuda::kv_cache_head_major();  // FP4LLM_KV_LAYOUT, as the backend reads it
  p.k_scale = c.k_scale;
  p.v_scale = c.v_scale;
  p.max_blocks = max_blocks;
  p.splits = c.splits;
  p.min_split_keys = c.min_split_keys;
  p.split_merge = c.merge;
  // The flash kernel's query tiles, in the engine's order (longest first).
  cuda::QueryTilePlan plan;
  for (int64_t first = 0; const Chunk& ch : c.chunks) {
    plan.add_sequence(first, ch.count, ch.start);
    first += ch.count;
  }
  const std::vector<cuda::QueryTile> tiles = c.flash ? plan.longest_first() : std::vector<cuda::QueryTile>{};
  cuda::DeviceBuffer<uint8_t> tiles_bytes(std::max<size_t>(1, tiles.size() * sizeof(cuda::QueryTile)));
  if (!tiles.empty())
    FP4LLM_CUDA_CHECK(cudaMemcpy(tiles_bytes.data(), tiles.data(), tiles.size() * sizeof(cuda::QueryTile), cudaMemcpyHostToDevice));
  const auto* tiles_d = reinterpret_cast<const cuda::QueryTile*>(tiles_bytes.data());
  if (c.flash && !c.rope) {
    cuda::flash_prefill_attention(qd.data(), kd.data(), vd.data(), pd.data(), sd.data(), td.data(), tiles_d,
                                  int64_t(tiles.size()), p, out.data(), nullptr);
  } else if (c.rope) {
    const auto qkv_d = cuda::DeviceBuffer<float>::from_host(qkv);
    const auto slots_d = cuda::DeviceBuffer<int64_t>::from_host(slots);
    const auto qn_d = cuda::DeviceBuffer<float>::from_host(q_norm), kn_d = cuda::DeviceBuffer<float>::from_host(k_norm);
    const auto freq_d = cuda::DeviceBuffer<float>::from_host(inv_freq);
    cuda::RopeCacheParams rp;
    rp.heads = c.heads, rp.kv_heads = c.kv_heads, rp.head_dim = D, rp.one_plus = c.one_plus, rp.fp8 = c.fp8;
    rp.head_major_cache = p.head_major_cache;
    rp.eps = float(kRopeEps);
    rp.k_scale = c.k_scale, rp.v_scale = c.v_scale;
    const cuda::RopeCacheIo io{pd.data(), slots_d.data(), qn_d.data(), kn_d.data(), freq_d.data(), nullptr,
                               kd.data(), vd.data()};
    const cuda::AttentionWorkspace ws{part_out.data(), part_ml.data(), counters.data()};
    if (c.flash) {  // the rope kernel for the keys and values only (io.q is null), the queries in the flash kernel
      cuda::rope_and_cache(qkv_d.data(), T, rp, io, nullptr);
      cuda::flash_prefill_attention_with_rope(qkv_d.data(), rp, io, sd.data(), td.data(), tiles_d, int64_t(tiles.size()), p,
                                              out.data(), nullptr);
    } else if (c.blocks_before_rope) {
      cuda::DeviceBuffer<float> roped_q(q.size());
      cuda::RopeCacheIo io_q = io;
      io_q.q = roped_q.data();
      cuda::AttentionParams early = p;
      early.cache_blocks_before_wait = true;
      cudaStream_t stream = nullptr;
      FP4LLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      test_support::delay_stream(stream, 200.0);
      {
        const cuda::EarlyLaunchScope early_rope(true);
        cuda::rope_and_cache(qkv_d.data(), T, rp, io_q, stream);
      }
      cuda::mma_decode_attention(roped_q.data(), kd.data(), vd.data(), pd.data(), sd.data(), td.data(), T, early, ws,
                                 out.data(), stream);
      FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream));
      FP4LLM_CUDA_CHECK(cudaStreamDestroy(stream));
    } else if (c.mma) {
      cuda::mma_decode_attention_with_rope(qkv_d.data(), rp, io, sd.data(), td.data(), T, p, ws, out.data(), nullptr);
    } else {
      cuda::paged_attention_with_rope(qkv_d.data(), rp, io, sd.data(), td.data(), T, p, ws, out.data(), nullptr);
    }
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    check_new_keys_and_values(c, kd.to_host(), vd.to_host(), k, v, slots, roped);
    if (::testing::Test::HasFatalFailure()) return;
  } else if (c.mma) {
    cuda::mma_decode_attention(qd.data(), kd.data(), vd.data(), pd.data(), sd.data(), td.data(), T, p,
                               {part_out.data(), part_ml.data(), counters.data()}, out.data(), nullptr);
  } else {
    cuda::paged_attention(qd.data(), kd.data(), vd.data(), pd.data(), sd.data(), td.data(), T, p,
                          {part_out.data(), part_ml.data(), counters.data()}, out.data(), nullptr);
  }
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  const auto got = out.to_host();

  const int64_t group = c.heads / c.kv_heads;
  for (int64_t t = 0; t < T; ++t) {
    const auto& table = tables[size_t(token_seq[size_t(t)])];
    const int64_t pos = positions[size_t(t)];
    const int64_t first = c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
    for (int64_t h = 0; h < c.heads; ++h) {
      const int64_t g = h / group;
      const auto at = [&](int64_t key) {
        return size_t(cuda::cache_row_offset(table[size_t(key / kBlock)] * kBlock + key % kBlock, g, c.kv_heads, D,
                                             p.head_major_cache));
      };
      std::vector<double> score;
      for (int64_t j = first; j <= pos; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d)
          dot += double(q[size_t((t * c.heads + h) * D + d)]) * cache_value(k, at(j) + size_t(d), c.fp8) * (c.fp8 ? c.k_scale : 1.0);
        score.push_back(dot * p.scale);
      }
      const double mx = *std::max_element(score.begin(), score.end());
      double sum = 0;
      for (double& s : score) sum += (s = std::exp(s - mx));
      for (int64_t d = 0; d < D; ++d) {
        double ref = 0, scale = 0;
        for (int64_t j = first; j <= pos; ++j) {
          const double val = cache_value(v, at(j) + size_t(d), c.fp8) * (c.fp8 ? c.v_scale : 1.0);
          ref += score[size_t(j - first)] / sum * val;
          scale = std::max(scale, std::fabs(val));
        }
        const float g_val = __bfloat162float(got[size_t((t * c.heads + h) * D + d)]);
        ASSERT_TRUE(std::isfinite(g_val)) << "token " << t << " head " << h << " dim " << d;
        // The tensor-core kernels round q and the probabilities to BF16 (FP16 for the decode
        // kernel with an FP8 cache) for the tensor cores.
        const bool bf16_operands = c.flash || (c.mma && !c.fp8);
        const double tol = bf16_operands ? 2e-2 * std::fabs(ref) + 1e-2 * scale : 6e-3 * std::fabs(ref) + 2e-3 * scale;
        ASSERT_NEAR(g_val, ref, tol)
            << "token " << t << " (position " << pos << ") head " << h << " dim " << d;
      }
    }
  }
}

// The case with its FP8 cache (seed), then with a BF16 cache and unit scales (seed + 1).
void run_with_both_caches(Case c, uint32_t seed) {
  run_case(c, seed);
  c.fp8 = false;
  c.k_scale = c.v_scale = 1.0f;
  run_case(c, seed + 1);
}

// Every query group from 1 to 8 on the tensor-core decode kernel, both caches, with and
// without splits, some in a sliding window (keys masked below a block's first): groups below 8
// leave query columns unused in the key-rows kernel (the default for them), and the former kernel
// (FP4LLM_ATTN_KEY_ROWS=0) pads each group to 16 rows.
TEST(GpuMmaDecodeAttention, QueryGroupsOfOneToEight) {
  FP4LLM_REQUIRE_GPU();
  uint32_t seed = 60;
  for (int64_t group = 1; group <= 9; ++group) {
    // 9: a second group of 8, at head_dim 64 in a window.
    const int64_t g = std::min<int64_t>(group, 8), kv_heads = g % 2 ? 3 : 2;
    const int64_t head_dim = group % 3 ? 128 : 64, window = group % 4 == 0 || group == 9 ? 37 : 0;
    Case c{g * kv_heads, kv_heads, head_dim, window, true, 0.5f, 2.0f, {{900, 1}, {21, 1}, {0, 1}}, 1 + group % 4};
    c.mma = true;
    c.min_split_keys = 64;
    run_with_both_caches(c, seed);
    seed += 2;
  }
}

}  // namespace

TEST(GpuPagedAttention, DecodeDeepInContextWithSplits) {
  FP4LLM_REQUIRE_GPU();
  run_case({32, 8, 128, 0, true, 0.5f, 2.0f, {{0, 1}, {200, 1}, {1000, 1}}, 8}, 1);
}

TEST(GpuPagedAttention, DecodeWithoutSplitsBf16Cache) {
  FP4LLM_REQUIRE_GPU();
  run_case({8, 2, 128, 0, false, 1.0f, 1.0f, {{37, 1}, {5, 1}}}, 2);
}

TEST(GpuPagedAttention, PrefillChunksWithSlidingWindow) {
  FP4LLM_REQUIRE_GPU();
  run_case({4, 1, 256, 7, false, 1.0f, 1.0f, {{10, 40}, {0, 5}}}, 3);
  run_case({4, 1, 256, 7, true, 0.25f, 1.5f, {{10, 40}, {0, 5}}}, 4);
}

TEST(GpuPagedAttention, HeadDim64GroupOneLongPrefill) {
  FP4LLM_REQUIRE_GPU();
  run_case({16, 16, 64, 0, true, 1.0f, 1.0f, {{0, 70}, {3, 70}}}, 5);
}

TEST(GpuPagedAttention, GroupOf16SlidingDecodeWithSplits) {
  FP4LLM_REQUIRE_GPU();
  run_case({64, 4, 128, 300, true, 1.0f, 1.0f, {{2000, 1}, {100, 1}}, 4}, 6);
}

TEST(GpuPagedAttention, MoreSplitsThanKeysLeavesEmptySplits) {
  FP4LLM_REQUIRE_GPU();
  run_case({8, 2, 128, 0, true, 1.0f, 1.0f, {{4, 1}, {40, 1}, {700, 1}}, 32}, 7);
}

// Splits of 32 keys: up to 22 splits of one token merged by the last to finish, on both kernels.
TEST(GpuPagedAttention, ShortSplitsMergeManyPartials) {
  FP4LLM_REQUIRE_GPU();
  Case c{8, 2, 128, 0, true, 0.5f, 2.0f, {{4, 1}, {40, 1}, {700, 1}, {130, 1}}, 32};
  c.min_split_keys = 32;
  run_case(c, 8);
  c.mma = true;
  run_with_both_caches(c, 9);
  // Five splits, a count no cluster size divides: under FP4LLM_ATTN_CLUSTER the launch takes
  // ceil(5 / C) splits of C blocks, some of them past a short context's keys.
  c.splits = 5;
  run_with_both_caches(c, 11);
}

// 128 splits of 32 keys (FP4LLM_ATTN_SPLIT_BLOCKS can ask for up to 256): over 120 partial
// results of one token merged by the last split to finish, on both decode kernels.
TEST(GpuPagedAttention, MergesOverAHundredSplits) {
  FP4LLM_REQUIRE_GPU();
  Case c{8, 2, 128, 0, true, 0.5f, 2.0f, {{3990, 1}, {40, 1}, {1, 1}}, 128};
  c.min_split_keys = 32;
  run_case(c, 90);
  c.mma = true;
  run_with_both_caches(c, 91);
}

// Up to 188 splits of a token (more than the by-rows merge's 128 loaded at once), a group of 8,
// and a token with a single split beside them: every merge, on both decode kernels.
TEST(GpuPagedAttention, EveryMergeOfOver128Splits) {
  FP4LLM_REQUIRE_GPU();
  Case c{16, 2, 128, 0, true, 0.5f, 2.0f, {{6000, 1}, {40, 1}, {1, 1}}, 200};
  c.min_split_keys = 32;
  using cuda::SplitMerge;
  for (const SplitMerge merge : {SplitMerge::kByRows, SplitMerge::kChain, SplitMerge::kTwoPass}) {
    SCOPED_TRACE("merge " + std::to_string(int(merge)));
    c.merge = merge;
    c.mma = false;
    run_case(c, 92);
    c.mma = true;
    run_with_both_caches(c, 93);
  }
}

TEST(GpuFlashPrefill, CausalChunksOfSeveralSequences) {
  FP4LLM_REQUIRE_GPU();
  Case c{8, 2, 128, 0, true, 0.5f, 2.0f, {{0, 150}, {30, 70}, {5, 1}}};
  c.flash = true;
  run_with_both_caches(c, 21);
}

// Query tiles over 4 to 7 key tiles (the kernels' steady state: block-table entries and raw and
// widened buffers reused several times over), a prompt and a continued one, head_dim 128 and 64.
TEST(GpuFlashPrefill, LongPromptsReuseEveryBuffer) {
  FP4LLM_REQUIRE_GPU();
  Case c{8, 2, 128, 0, true, 0.5f, 2.0f, {{0, 400}, {300, 100}}};
  c.flash = true;
  run_with_both_caches(c, 31);
  Case d{8, 2, 64, 0, true, 1.0f, 1.0f, {{0, 333}}};
  d.flash = true;
  run_with_both_caches(d, 32);
}

TEST(GpuFlashPrefill, SlidingWindowHeadDim256And64) {
  FP4LLM_REQUIRE_GPU();
  Case c{4, 1, 256, 40, true, 1.0f, 1.0f, {{0, 200}, {100, 65}}};
  c.flash = true;
  run_case(c, 23);
  Case d{16, 16, 64, 0, false, 1.0f, 1.0f, {{0, 129}}};
  d.flash = true;
  run_case(d, 24);
  // A window at head_dim 64 with a query group of 4 (one block per kv head under FP4LLM_FLASH_HEADS=4).
  Case e{8, 2, 64, 40, true, 1.0f, 1.0f, {{0, 150}, {20, 90}}};
  e.flash = true;
  run_case(e, 25);
  // head_dim 256 (the first kernel) over two kv heads, so that the cache's order matters
  // (FP4LLM_KV_LAYOUT); a BF16 cache.
  Case f{8, 2, 256, 40, false, 1.0f, 1.0f, {{0, 150}, {30, 70}}};
  f.flash = true;
  run_case(f, 26);
}

// Windows of 128 and 200 keys over long prompts: a 64-token query tile's key tiles that lie wholly
// inside every row's window and below every row's position skip the per-element mask
// (tile_needs_mask), the tiles on both bounds keep it; both flash kernels, both caches.
TEST(GpuFlashPrefill, LongWindowsSkipTheMaskInside) {
  FP4LLM_REQUIRE_GPU();
  Case c{8, 2, 128, 128, true, 0.5f, 2.0f, {{0, 300}, {200, 100}, {7, 1}}};
  c.flash = true;
  run_with_both_caches(c, 26);
  Case d{4, 1, 256, 200, true, 1.0f, 1.0f, {{0, 330}, {150, 129}}};
  d.flash = true;
  run_case(d, 28);
}

// The flash kernel taking in the rope kernel's work on the queries (FP4LLM_FLASH_ROPE): q raw
// from q|k|v rows, normalised and rotated by the kernel; the new keys and values by the rope kernel
// alone, with its query output null. Both against float64 (roped_row), the cache rows checked
// within their format's rounding and every other cache byte unchanged. Prompts, a continued one
// and a decode token in one step, head_dim 128 and 64, a sliding window, both caches, Gemma3's
// gains. With the first flash kernel (FP4LLM_FLASH_PIPELINED=0), which does not take the queries'
// rope, the call is refused with an error.
TEST(GpuFlashPrefill, TakesInTheRopeKernelsQueries) {
  FP4LLM_REQUIRE_GPU();
  cuda::AttentionParams p;
  p.heads = 8, p.kv_heads = 2, p.head_dim = 128;
  if (!cuda::flash_prefill_takes_rope(p)) {
    cuda::RopeCacheParams rp;
    rp.heads = 8, rp.kv_heads = 2, rp.head_dim = 128;
    EXPECT_THROW(cuda::flash_prefill_attention_with_rope(nullptr, rp, cuda::RopeCacheIo{}, nullptr, nullptr, nullptr, 1, p,
                                                         nullptr, nullptr),
                 std::exception);
    return;
  }
  Case c{8, 2, 128, 0, true, 0.5f, 2.0f, {{0, 150}, {30, 70}, {5, 1}}};
  c.flash = c.rope = true;
  run_with_both_caches(c, 41);
  Case d{8, 2, 64, 40, true, 1.0f, 1.0f, {{0, 150}, {20, 90}}};
  d.flash = d.rope = d.one_plus = true;
  run_with_both_caches(d, 43);
}

// The tensor-core decode kernel taking in the rope kernel's work: q and the new key and value of
// each token from raw q|k|v rows, against float64 (the cache rows the kernel wrote checked within
// their format's rounding, every other cache byte unchanged). Positions in the first cache block,
// at a block's first and last slot, deep in a context with splits (only the last split writes),
// in a sliding window, head_dim 64 and 128, both caches, Gemma3's gains.
TEST(GpuMmaDecodeAttention, TakesInTheRopeKernelsWork) {
  FP4LLM_REQUIRE_GPU();
  std::vector<Case> cases = {
      {32, 8, 128, 0, true, 0.5f, 2.0f, {{0, 1}, {200, 1}, {1000, 1}, {16, 1}, {31, 1}}, 8},
      {8, 2, 128, 0, false, 1.0f, 1.0f, {{37, 1}, {5, 1}}},
      {64, 4, 128, 300, true, 1.0f, 1.0f, {{2000, 1}, {100, 1}}, 4},
      {16, 2, 64, 0, true, 0.25f, 1.0f, {{300, 1}, {17, 1}}, 4},
      {16, 2, 64, 50, false, 1.0f, 1.0f, {{300, 1}, {17, 1}}, 4},
      {8, 2, 128, 0, false, 1.0f, 1.0f, {{1000, 1}, {47, 1}}, 32},
      {8, 8, 128, 0, true, 1.0f, 1.0f, {{15, 1}, {64, 1}, {500, 1}}, 2},  // one query head per kv head
  };
  uint32_t seed = 60;
  for (Case c : cases) {
    c.mma = c.rope = true;
    c.one_plus = seed % 2 == 1;
    run_case(c, seed++);
  }
}

// The tensor-core decode kernel requesting its first cache blocks before it waits for the rope
// kernel launched just before it (FP4LLM_ATTN_EARLY_BLOCKS), while a delay kernel ahead of both
// keeps the rope kernel from writing: the block holding each token's own key must be left out and
// requested after the wait, or the token's key reads as the random bytes it replaced. Positions
// whose block is a warp's first (0, 16, 31, 63: every warp's first block at 4 warps), deeper ones
// where it is not, splits (only the last split holds the token), a window, head_dim 64 and 128,
// query groups 2, 4 and 8 (the key-rows kernel's), both caches; the same float64 reference.
// gpu_paged_attention_fp8_ahead2, _ahead3 and _cluster2 run it with 2 or 3 blocks ahead and clusters.
TEST(GpuMmaDecodeAttention, RequestsCacheBlocksBeforeTheRopeKernelsWrite) {
  FP4LLM_REQUIRE_GPU();
  std::vector<Case> cases = {
      {32, 8, 128, 0, true, 0.5f, 2.0f, {{0, 1}, {16, 1}, {31, 1}, {63, 1}, {200, 1}, {1000, 1}}, 8},
      {8, 2, 128, 0, false, 1.0f, 1.0f, {{37, 1}, {5, 1}, {48, 1}}},
      {32, 4, 128, 300, true, 1.0f, 1.0f, {{2000, 1}, {100, 1}}, 4},
      {16, 2, 64, 0, true, 0.25f, 1.0f, {{300, 1}, {17, 1}, {2, 1}}, 4},
      {16, 2, 64, 50, false, 1.0f, 1.0f, {{300, 1}, {47, 1}}, 4},
  };
  uint32_t seed = 120;
  for (Case c : cases) {
    c.mma = c.rope = c.blocks_before_rope = true;
    run_case(c, seed++);
  }
}

// The CUDA-core kernel taking in the rope kernel's work, at head_dim 256 (Gemma3's smaller models,
// which do not take the tensor-core kernel): groups of 2, 4 and 8 (the kernel's instances),
// windows, splits, both caches, both gain forms; same checks as above.
TEST(GpuPagedAttention, TakesInTheRopeKernelsWorkAtHeadDim256) {
  FP4LLM_REQUIRE_GPU();
  std::vector<Case> cases = {
      {4, 1, 256, 0, true, 0.5f, 2.0f, {{0, 1}, {200, 1}, {31, 1}}, 4},
      {8, 2, 256, 24, false, 1.0f, 1.0f, {{100, 1}, {16, 1}, {5, 1}}, 2},
      {8, 1, 256, 512, true, 1.0f, 1.0f, {{1500, 1}, {47, 1}}, 8},
      {2, 1, 256, 0, false, 1.0f, 1.0f, {{300, 1}}},
      {8, 4, 256, 0, true, 0.5f, 1.0f, {{700, 1}, {3, 1}, {130, 1}}, 4},  // Gemma3-4B's heads, FP8, merged splits
      {16, 2, 256, 0, false, 1.0f, 1.0f, {{400, 1}, {64, 1}}, 2},         // group 8 over two kv heads, BF16
  };
  uint32_t seed = 80;
  for (Case c : cases) {
    c.rope = true;
    c.one_plus = seed % 2 == 0;
    run_case(c, seed++);
  }
}

// The tensor-core decode kernel (work in progress) on the decode cases it supports, plus
// head_dim 64 with both caches.
TEST(GpuMmaDecodeAttention, MatchesTheReference) {
  FP4LLM_REQUIRE_GPU();
  std::vector<Case> cases = {
      {32, 8, 128, 0, true, 0.5f, 2.0f, {{0, 1}, {200, 1}, {1000, 1}}, 8},
      {8, 2, 128, 0, false, 1.0f, 1.0f, {{37, 1}, {5, 1}}},
      {64, 4, 128, 300, true, 1.0f, 1.0f, {{2000, 1}, {100, 1}}, 4},
      {8, 2, 128, 0, true, 1.0f, 1.0f, {{4, 1}, {40, 1}, {700, 1}}, 32},
      {16, 2, 64, 0, true, 1.0f, 1.0f, {{300, 1}, {17, 1}}, 4},
      {16, 2, 64, 50, false, 1.0f, 1.0f, {{300, 1}, {17, 1}}, 4},
      // One split over 1,000 keys: each warp walks about 16 cache blocks, so the blocks requested
      // ahead (one, or two with FP4LLM_ATTN_FP8_AHEAD=2) cycle through their whole ring.
      {8, 2, 128, 0, true, 1.0f, 1.0f, {{1000, 1}}},
      {16, 2, 64, 0, true, 1.0f, 1.0f, {{1000, 1}, {999, 1}}},
      {8, 2, 128, 0, false, 1.0f, 1.0f, {{1000, 1}}},
  };
  uint32_t seed = 40;
  for (Case c : cases) {
    c.mma = true;
    run_case(c, seed++);
  }
}

