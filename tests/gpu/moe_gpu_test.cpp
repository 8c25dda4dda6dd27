// The Qwen3-MoE block on the GPU (routing, grouping, grouped NVFP4 expert kernels, combine)
// against a float64 reference written here: softmax over all experts, stable top-k, optional
// renormalisation, SiLU-gated experts on the same dequantized NVFP4 weights. Shapes cover batch
// 1, decode batches on each kernel width, prefill-sized batches (several row slices per expert,
// several routing passes), top-k 1, experts left without tokens and every token on one expert.
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "backend/cuda/moe_layer.hpp"
#include "formats/number_formats.hpp"
#include "gpu_test_support.hpp"
#include "random_nvfp4.hpp"

using namespace fp4llm;

namespace {

struct Case {
  int64_t experts, top_k, tokens, hidden, inter;
  bool norm_topk_prob = true;
  bool one_expert_for_all = false;  // router and activations built so expert 5 wins every token
};

std::string name(const Case& c) {
  return "E" + std::to_string(c.experts) + " top" + std::to_string(c.top_k) + " T" + std::to_string(c.tokens) + " H" +
         std::to_string(c.hidden) + " I" + std::to_string(c.inter) + (c.one_expert_for_all ? " one-expert" : "");
}

float bf16_round(float v) { return bf16_to_float(float_to_bf16(v)); }

std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& x) {
  std::vector<__nv_bfloat16> b(x.size());
  for (size_t i = 0; i < x.size(); ++i) b[i] = __float2bfloat16_rn(x[i]);
  return b;
}

struct Expert {
  QuantizedLinear gate, up, down;
};

// Experts [first, first + count), stacked on the device as the grouped kernels read them.
void upload_experts(const std::vector<Expert>& experts, int64_t first, int64_t count, cuda::DeviceMoe& d) {
  for (int64_t e = 0; e < count; ++e) {
    const Expert& ex = experts[size_t(first + e)];
    const QuantizedLinear* down_parts[] = {&ex.down};
    const cuda::Nvfp4Tiles gate_up = cuda::make_gated_nvfp4_tiles(ex.gate, ex.up), down = cuda::make_nvfp4_tiles(down_parts);
    if (e == 0) {
      d.gate_up = cuda::allocate_experts(gate_up, count);
      d.down = cuda::allocate_experts(down, count);
    } else {
      cuda::upload_expert(d.gate_up, e, gate_up);
      cuda::upload_expert(d.down, e, down);
    }
  }
}

// The model side of one case: router, experts (host NVFP4 and device stacks), activations.
struct MoeCase {
  Case c;
  std::vector<float> router, h, x;  // router [E][H] and h [T][H] hold BF16 values
  std::vector<Expert> experts;
  cuda::DeviceMoe device;

  MoeCase(const Case& cs, std::mt19937& rng) : c(cs) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> positive(0.1f, 1.0f);
    router.resize(size_t(c.experts * c.hidden));
    h.resize(size_t(c.tokens * c.hidden));
    x.resize(size_t(c.tokens * c.hidden));
    const float spread = 2.0f / std::sqrt(float(c.hidden));  // logits of spread ~2
    for (float& v : router) v = bf16_round(normal(rng) * spread);
    for (float& v : h) v = bf16_round(c.one_expert_for_all ? positive(rng) : normal(rng));
    for (float& v : x) v = normal(rng);
    if (c.one_expert_for_all)
      for (int64_t i = 0; i < c.hidden; ++i) router[size_t(5 * c.hidden + i)] = 0.5f;
    for (int64_t e = 0; e < c.experts; ++e)
      experts.push_back({test_support::random_nvfp4(c.inter, c.hidden, rng), test_support::random_nvfp4(c.inter, c.hidden, rng),
                         test_support::random_nvfp4(c.hidden, c.inter, rng)});
    device.shape = {c.hidden, c.experts, c.top_k, c.norm_topk_prob};
    device.router = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(router));
    upload_experts(experts, 0, c.experts, device);
  }
};

struct Route {
  std::vector<int64_t> expert;
  std::vector<double> weight;
  double gap = 0;  // logit of the last chosen expert minus that of the first one left out
};

Route reference_route(const MoeCase& m, int64_t t) {
  const Case& c = m.c;
  std::vector<double> p(static_cast<size_t>(c.experts));
  double top = -INFINITY;
  for (int64_t e = 0; e < c.experts; ++e) {
    double dot = 0;
    for (int64_t i = 0; i < c.hidden; ++i) dot += double(m.router[size_t(e * c.hidden + i)]) * m.h[size_t(t * c.hidden + i)];
    p[size_t(e)] = dot;
    top = std::max(top, dot);
  }
  const std::vector<double> logits = p;
  double sum = 0;
  for (double& v : p) sum += (v = std::exp(v - top));
  for (double& v : p) v /= sum;
  std::vector<int64_t> order(static_cast<size_t>(c.experts));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)]; });
  Route r;
  double chosen = 0;
  for (int64_t k = 0; k < c.top_k; ++k) chosen += p[size_t(order[size_t(k)])];
  for (int64_t k = 0; k < c.top_k; ++k) {
    r.expert.push_back(order[size_t(k)]);
    r.weight.push_back(c.norm_topk_prob ? p[size_t(order[size_t(k)])] / chosen : p[size_t(order[size_t(k)])]);
  }
  r.gap = c.top_k < c.experts ? logits[size_t(order[size_t(c.top_k - 1)])] - logits[size_t(order[size_t(c.top_k)])] : 1.0;
  return r;
}

// Dequantized expert matrices, made when an expert is first used.
struct DenseExperts {
  const MoeCase& m;
  std::map<int64_t, std::array<std::vector<float>, 3>> cache;
  static std::vector<float> dense(const QuantizedLinear& q) {
    std::vector<float> w(static_cast<size_t>(q.out_features * q.in_features));
    for (int64_t r = 0; r < q.out_features; ++r) q.dequantize_row(r, &w[size_t(r * q.in_features)]);
    return w;
  }
  const std::array<std::vector<float>, 3>& of(int64_t e) {
    auto it = cache.find(e);
    if (it != cache.end()) return it->second;
    const Expert& ex = m.experts[size_t(e)];
    return cache.emplace(e, std::array{dense(ex.gate), dense(ex.up), dense(ex.down)}).first->second;
  }
};

// Expected x[t] (value, and the sum of |terms| that bounds the rounding).
std::pair<std::vector<double>, std::vector<double>> reference_output(const MoeCase& m, DenseExperts& dense, int64_t t,
                                                                     const Route& r) {
  const Case& c = m.c;
  std::vector<double> out(size_t(c.hidden)), bound(size_t(c.hidden));
  for (int64_t d = 0; d < c.hidden; ++d) out[size_t(d)] = m.x[size_t(t * c.hidden + d)];
  const float* h = &m.h[size_t(t * c.hidden)];
  for (size_t k = 0; k < r.expert.size(); ++k) {
    const auto& w = dense.of(r.expert[k]);
    std::vector<double> act(static_cast<size_t>(c.inter));
    for (int64_t i = 0; i < c.inter; ++i) {
      double g = 0, u = 0;
      for (int64_t j = 0; j < c.hidden; ++j) {
        g += double(w[0][size_t(i * c.hidden + j)]) * h[j];
        u += double(w[1][size_t(i * c.hidden + j)]) * h[j];
      }
      act[size_t(i)] = bf16_round(float(g / (1.0 + std::exp(-g)) * u));  // the kernel stores BF16
    }
    for (int64_t d = 0; d < c.hidden; ++d) {
      double y = 0, b = 0;
      for (int64_t i = 0; i < c.inter; ++i) {
        const double p = double(w[2][size_t(d * c.inter + i)]) * act[size_t(i)];
        y += p;
        b += std::fabs(p);
      }
      out[size_t(d)] += r.weight[k] * y;
      bound[size_t(d)] += r.weight[k] * b;
    }
  }
  return {out, bound};
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {16, 8, 1, 208, 48},                   // batch 1
      {16, 8, 3, 208, 48},  {16, 8, 12, 208, 48}, {16, 8, 17, 208, 48}, {16, 8, 64, 208, 48},  // decode kernel widths
      {64, 2, 1, 208, 48},                   // most experts without tokens
      {16, 1, 256, 208, 48, false},          // top-1, prefill-sized, no renormalisation
      {16, 4, 256, 208, 48, true, true},     // every token on expert 5: 4 row slices of one group
      {16, 4, 9, 208, 48, true, true}, {16, 4, 41, 208, 48, true, true},  // one group of 9 / 41 rows, the rest of a few
      {16, 8, 1100, 208, 32},                // two routing passes (1024 + 76 tokens)
      {32, 8, 5, 2048, 768},                 // Qwen3-30B-A3B's expert shape
      {128, 8, 1, 2048, 768},                // Qwen3-30B-A3B at batch 1 (FP4LLM_EXPERTS_SPLITS=wave: 4 splits of the down)
      {128, 8, 64, 208, 32}, {128, 1, 1, 208, 32},  // 128 experts: four per lane in the selection
      {16, 16, 2, 208, 32}, {64, 32, 1, 208, 32},    // every lane of a warp routing a step itself
      {512, 8, 2, 208, 32},                          // the most experts: sixteen per lane
      {16, 8, 5, 512, 32}, {16, 8, 5, 1024, 32}, {16, 8, 5, 4096, 32},  // every router row width
  };
  return all;
}

}  // namespace

// Every routing output, and what the selection reads (the logits: NaN), poisoned: a kernel that
// saw an earlier launch's values instead of its own would fail.
static void poison_routing(cuda::MoeWorkspace& ws) {
  for (auto* b : {&ws.topk_expert, &ws.row_slot, &ws.num_groups, &ws.group_offset, &ws.group_expert, &ws.row_token})
    FP4LLM_CUDA_CHECK(cudaMemset(b->data(), 0xFF, b->bytes()));
  FP4LLM_CUDA_CHECK(cudaMemset(ws.topk_weight.data(), 0xFF, ws.topk_weight.bytes()));
  FP4LLM_CUDA_CHECK(cudaMemset(ws.logits.data(), 0xFF, ws.logits.bytes()));
}

// What the routing left in ws for the first `tokens` tokens, whichever kernel wrote it (the
// experts' gate/up product at one or two tokens, else or with FP4LLM_ROUTING_IN_EXPERTS=0 the
// selection kernel): every
// routed row once in a group of its expert, groups in increasing expert order, and each token's
// chosen experts and weights as the float64 reference chooses them (near ties skipped).
static void check_routing(const MoeCase& m, cuda::MoeWorkspace& ws, int64_t tokens) {
  const Case& c = m.c;
  const std::vector<int32_t> got_ids = ws.topk_expert.to_host();
  const std::vector<float> got_w = ws.topk_weight.to_host();
  // The grouping: every routed row once, groups in increasing expert order.
  const std::vector<int32_t> slots = ws.row_slot.to_host(), offsets = ws.group_offset.to_host();
  const std::vector<int32_t> group_expert = ws.group_expert.to_host(), row_token = ws.row_token.to_host();
  const int32_t groups = ws.num_groups.to_host()[0];
  std::vector<int> seen(size_t(tokens * c.top_k), 0);
  ASSERT_GE(groups, 0) << name(c);
  ASSERT_LT(size_t(groups), offsets.size()) << name(c);
  ASSERT_EQ(offsets[size_t(groups)], tokens * c.top_k) << name(c);
  for (int32_t g = 0; g < groups; ++g) {
    if (g > 0) {
      ASSERT_LT(group_expert[size_t(g - 1)], group_expert[size_t(g)]) << name(c);
    }
    ASSERT_LT(offsets[size_t(g)], offsets[size_t(g + 1)]) << name(c) << ": empty group " << g;
    for (int32_t r = offsets[size_t(g)]; r < offsets[size_t(g + 1)]; ++r) {
      const int32_t slot = slots[size_t(r)];
      ASSERT_EQ(got_ids[size_t(slot)], group_expert[size_t(g)]) << name(c) << " row " << r;
      ASSERT_EQ(row_token[size_t(r)], slot / c.top_k) << name(c) << " row " << r;
      ++seen[size_t(slot)];
    }
  }
  for (int v : seen) ASSERT_EQ(v, 1) << name(c);
  int64_t near_ties = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    const Route r = reference_route(m, t);
    if (r.gap < 1e-3) {  // the GPU's float32 logits may order a near tie either way
      ++near_ties;
      continue;
    }
    // The chosen set and its weights (two chosen experts in a near tie may come in either order).
    std::map<int64_t, double> want, got;
    for (int64_t k = 0; k < c.top_k; ++k) {
      want[r.expert[size_t(k)]] = r.weight[size_t(k)];
      got[got_ids[size_t(t * c.top_k + k)]] = got_w[size_t(t * c.top_k + k)];
    }
    ASSERT_EQ(got.size(), want.size()) << name(c) << " token " << t << ": an expert chosen twice";
    for (const auto& [e, w] : want) {
      ASSERT_TRUE(got.count(e)) << name(c) << " token " << t << " expert " << e << " not chosen";
      ASSERT_NEAR(got[e], w, 1e-5 + 1e-4 * w) << name(c) << " token " << t << " expert " << e;
    }
    if (c.one_expert_for_all) {
      ASSERT_EQ(got_ids[size_t(t * c.top_k)], 5) << name(c);
    }
  }
  EXPECT_LE(near_ties, tokens / 50 + 1) << name(c);
}

TEST(GpuMoe, RoutingMatchesTheReference) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(21);
  for (const Case& c : cases()) {
    const MoeCase m(c, rng);
    const auto h = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(m.h));
    cuda::MoeWorkspace ws;
    ws.ensure(c.tokens, m.device.shape, c.inter);
    const int64_t tokens = std::min(c.tokens, cuda::kMoeTokensPerPass);  // one pass routes at most this many
    // Routed twice, outputs poisoned in between: the second launch must not rest on anything the
    // first left behind.
    cuda::moe_route(m.device.router.data(), h.data(), tokens, m.device.shape, ws.routing(), nullptr);
    poison_routing(ws);
    cuda::moe_route(m.device.router.data(), h.data(), tokens, m.device.shape, ws.routing(), nullptr);
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    check_routing(m, ws, tokens);
  }
}

// moe_mlp's results for every `stride`-th token against the float64 reference: the updated
// residual rows `got` and, in `normed`, their next norm (weights `gain`). Tokens whose routing is a
// near tie are skipped: either expert is right (RoutingMatchesTheReference).
// deferred (FP4LLM_NORM_DEFERRED): normed holds the stream times the gains, not normalised.
static void check_layer(const MoeCase& m, DenseExperts& dense, const std::vector<float>& got,
                 const std::vector<__nv_bfloat16>& normed, const std::vector<float>& gain, int64_t stride,
                 bool deferred = false) {
  const Case& c = m.c;
  for (int64_t t = 0; t < c.tokens; t += stride) {
    const Route r = reference_route(m, t);
    if (r.gap < 1e-3) continue;
    const auto [want, bound] = reference_output(m, dense, t, r);
    double ss = 0;
    for (int64_t d = 0; d < c.hidden; ++d) ss += double(got[size_t(t * c.hidden + d)]) * got[size_t(t * c.hidden + d)];
    const double inv = deferred ? 1.0 : 1.0 / std::sqrt(ss / double(c.hidden) + 1e-6);
    for (int64_t d = 0; d < c.hidden; ++d) {
      const double want_h = got[size_t(t * c.hidden + d)] * inv * gain[size_t(d)];
      ASSERT_NEAR(__bfloat162float(normed[size_t(t * c.hidden + d)]), want_h, 5e-3 * std::fabs(want_h) + 1e-6)
          << name(c) << " token " << t << " dim " << d;
      const float g = got[size_t(t * c.hidden + d)];
      ASSERT_TRUE(std::isfinite(g)) << name(c) << " token " << t << " dim " << d;
      // Float32 accumulation, and an activation that rounds to the other BF16 neighbour.
      ASSERT_LE(std::fabs(g - want[size_t(d)]), 5e-3 * bound[size_t(d)] + 1e-5 * std::fabs(want[size_t(d)]) + 1e-30)
          << name(c) << " token " << t << " dim " << d << " got " << g << " want " << want[size_t(d)];
    }
  }
}

TEST(GpuMoe, ExpertsMatchTheReference) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(22);
  for (const Case& c : cases()) {
    const MoeCase m(c, rng);
    DenseExperts dense{m, {}};
    cuda::MoeWorkspace ws;
    ws.ensure(c.tokens, m.device.shape, c.inter);
    FP4LLM_CUDA_CHECK(cudaMemset(ws.act.data(), 0xFF, ws.act.bytes()));  // unwritten rows show as NaN
    FP4LLM_CUDA_CHECK(cudaMemset(ws.expert_out.data(), 0xFF, ws.expert_out.bytes()));
    std::vector<float> gain(static_cast<size_t>(c.hidden));  // the next norm's weights
    for (float& g : gain) g = 0.5f + float(rng() % 1024) / 1024.0f;
    const auto next_w = cuda::DeviceBuffer<float>::from_host(gain);
    {  // a first layer on copies: the checked call then finds the workspace as a step leaves it
      auto h0 = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(m.h));
      auto x0 = cuda::DeviceBuffer<float>::from_host(m.x);
      cuda::moe_mlp(m.device, h0.data(), c.tokens, x0.data(), next_w.data(), {c.hidden, 1e-6f, false}, ws, nullptr);
      FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
      FP4LLM_CUDA_CHECK(cudaMemset(ws.expert_out.data(), 0xFF, ws.expert_out.bytes()));
      poison_routing(ws);
    }
    auto h = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(m.h));  // in: activations; out: the next norm
    auto x = cuda::DeviceBuffer<float>::from_host(m.x);
    cuda::moe_mlp(m.device, h.data(), c.tokens, x.data(), next_w.data(), {c.hidden, 1e-6f, false}, ws, nullptr);
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = x.to_host();
    const std::vector<__nv_bfloat16> normed = h.to_host();
    // Spot-check tokens across the batch (every token for small batches): the reference is slow.
    check_layer(m, dense, got, normed, gain, std::max<int64_t>(1, c.tokens / 40));
    if (c.tokens <= cuda::kMoeTokensPerPass) check_routing(m, ws, c.tokens);  // one pass: its routing is the whole step's
    // Every step counts its distinct experts (the benchmark's floor).
    EXPECT_GT(ws.active_experts.to_host()[0], 0u) << name(c);
  }
}

// The layer taking its input norm itself (MoE models' default): the router kernel makes h =
// bf16(rmsnorm(x) * gain) from the residual stream and stores it for the experts. m.h is replaced
// by that norm computed in float64 and rounded to BF16, checked against what the router stores
// (routing alone, on a copy), and then by what it stored (a value within float32 reach of a BF16
// rounding boundary may round the other way on the GPU: a BF16 step of one activation moves a
// logit by about 1e-4, the routing checks' own tolerance).
static void take_the_routers_norm(MoeCase& m, const std::vector<float>& input_gain, const cuda::DeviceBuffer<float>& input_w,
                                  const cuda::DeviceBuffer<float>& x, cuda::MoeWorkspace& ws) {
  const Case& c = m.c;
  for (int64_t t = 0; t < c.tokens; ++t) {
    double ss = 0;
    for (int64_t d = 0; d < c.hidden; ++d) ss += double(m.x[size_t(t * c.hidden + d)]) * m.x[size_t(t * c.hidden + d)];
    const double inv = 1.0 / std::sqrt(ss / double(c.hidden) + 1e-6);
    for (int64_t d = 0; d < c.hidden; ++d)
      m.h[size_t(t * c.hidden + d)] = bf16_round(float(m.x[size_t(t * c.hidden + d)] * inv * input_gain[size_t(d)]));
  }
  auto h_seen = test_support::poisoned<__nv_bfloat16>(size_t(c.tokens * c.hidden));
  const cuda::NormedRouterInput in{x.data(), input_w.data(), 1e-6f, false, h_seen.data()};
  cuda::moe_route_normed(m.device.router.data(), in, c.tokens, m.device.shape, ws.routing(), nullptr);
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<__nv_bfloat16> stored = h_seen.to_host();
  for (size_t i = 0; i < stored.size(); ++i)
    ASSERT_NEAR(__bfloat162float(stored[i]), m.h[i], std::ldexp(std::fabs(m.h[i]), -7) + 1e-30) << name(c) << " stored h at " << i;
  for (size_t i = 0; i < stored.size(); ++i) m.h[i] = __bfloat162float(stored[i]);
}

// A case of the layer with its input norm in the router: the gains of that norm and the next,
// the workspace, and the residual stream on the device.
struct NormedLayer {
  MoeCase m;
  std::vector<float> input_gain, next_gain;
  DenseExperts dense;
  cuda::MoeWorkspace ws;
  cuda::DeviceBuffer<float> input_w, next_w, x;
  NormedLayer(const Case& c, std::mt19937& rng)
      : m(c, rng), input_gain(size_t(c.hidden)), next_gain(size_t(c.hidden)), dense{m, {}} {
    for (float& g : input_gain) g = bf16_round(0.5f + float(rng() % 1024) / 1024.0f);
    for (float& g : next_gain) g = 0.5f + float(rng() % 1024) / 1024.0f;
    ws.ensure(c.tokens, m.device.shape, c.inter);
    input_w = cuda::DeviceBuffer<float>::from_host(input_gain);
    next_w = cuda::DeviceBuffer<float>::from_host(next_gain);
    x = cuda::DeviceBuffer<float>::from_host(m.x);
  }
  NormedLayer(const NormedLayer&) = delete;  // dense refers to m
};

// The layer with its input norm in the router: the h the router stored (above), the residual
// update, and the next norm.
TEST(GpuMoe, ExpertsNormaliseTheirInput) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(25);
  // Hidden 208, 2048 and 4096: one, eight and sixteen 16-byte pieces of the router row per lane.
  for (const Case& c :
       std::vector<Case>{{16, 8, 1, 208, 48}, {16, 8, 2, 208, 48}, {128, 8, 2, 2048, 64}, {16, 8, 2, 4096, 32}}) {
    NormedLayer l(c, rng);
    MoeCase& m = l.m;
    auto h = test_support::poisoned<__nv_bfloat16>(size_t(c.tokens * c.hidden));  // written by the router, then the next norm
    take_the_routers_norm(m, l.input_gain, l.input_w, l.x, l.ws);
    if (HasFatalFailure()) return;
    poison_routing(l.ws);
    cuda::moe_mlp(m.device, h.data(), c.tokens, l.x.data(), l.next_w.data(), {c.hidden, 1e-6f, false}, l.ws, nullptr,
                  l.input_w.data());
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = l.x.to_host();
    const std::vector<__nv_bfloat16> normed = h.to_host();
    check_layer(m, l.dense, got, normed, l.next_gain, 1);
    check_routing(m, l.ws, c.tokens);
  }
}

// The deferred norm's partial sums a one-token layer left: each 16 features' sum of squares of the
// stream as stored (float64 of the stored floats).
static void check_tile_sums(const Case& c, const std::vector<float>& stream, const std::vector<float>& sums) {
  for (int64_t p = 0; p < (c.hidden + 15) / 16; ++p) {
    double want = 0;
    for (int64_t d = p * 16; d < std::min(c.hidden, p * 16 + 16); ++d) want += double(stream[size_t(d)]) * stream[size_t(d)];
    ASSERT_NEAR(sums[size_t(p)], want, 1e-5 * want + 1e-30) << name(c) << " sum of squares of tile " << p;
  }
}

// The one-token steps the deferred norm's MoE path takes: top-8 at a small and at Qwen3-30B-A3B's
// shape, top-2 of 64 experts, top-1.
static const std::vector<Case>& one_token_cases() {
  static const std::vector<Case> cases = {{16, 8, 1, 208, 48}, {128, 8, 1, 2048, 768}, {64, 2, 1, 208, 48}, {16, 1, 1, 208, 32}};
  return cases;
}

// One token's layer run with the next norm deferred (moe_experts_deferred_norm; input_deferred: the
// layer's own input norm too, from `sums`, which the down projection then overwrites), then the
// stream, h, the routing and the tile sums checked against the references.
static void run_and_check_deferred_layer(NormedLayer& l, cuda::DeviceBuffer<__nv_bfloat16>& h, cuda::DeviceBuffer<float>& sums,
                                         bool input_deferred) {
  const Case& c = l.m.c;
  poison_routing(l.ws);
  const cuda::DeferredNorm deferred{sums.data(), (c.hidden + 15) / 16, 1e-6f};
  cuda::moe_experts_deferred_norm(l.m.device, h.data(), l.x.data(), {c.hidden, 1e-6f, false}, l.input_w.data(),
                                  l.next_w.data(), deferred, l.ws, nullptr, nullptr, input_deferred ? &deferred : nullptr);
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> got = l.x.to_host(), got_sums = sums.to_host();
  check_layer(l.m, l.dense, got, h.to_host(), l.next_gain, 1, /*deferred=*/true);
  check_routing(l.m, l.ws, c.tokens);
  check_tile_sums(c, got, got_sums);
}

// One token's layer with the experts' weighted sum added by their down projection and the next
// norm deferred to the next qkv (FP4LLM_NORM_DEFERRED, moe_experts_deferred_norm): the residual
// update as above, h as the stream times the next gains in BF16, and each 16-row tile's sum of
// squares of the stored stream.
TEST(GpuMoe, ExpertsDeferTheNextNorm) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(26);
  for (const Case& c : one_token_cases()) {
    NormedLayer l(c, rng);
    MoeCase& m = l.m;
    auto h = test_support::poisoned<__nv_bfloat16>(size_t(c.hidden));
    take_the_routers_norm(m, l.input_gain, l.input_w, l.x, l.ws);
    if (HasFatalFailure()) return;
    auto sums = test_support::poisoned<float>(size_t((c.hidden + 15) / 16));
    run_and_check_deferred_layer(l, h, sums, /*input_deferred=*/false);
  }
}

// The same with the layer's own input norm deferred too (FP4LLM_NORM_DEFERRED=router), by the
// o_proj before it: h holds bf16(x * input gains) and the partial sums hold x's squares per 16
// features; the router's logits and the experts' gate/up sums are scaled by 1 / rms. The
// reference takes h = inv * bf16(x * gains), unrounded, which is what those products compute. The
// down projection writes its sums into the buffer the router and gate/up read, as the backend's.
TEST(GpuMoe, ExpertsTakeADeferredInputNorm) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(27);
  for (const Case& c : one_token_cases()) {
    NormedLayer l(c, rng);
    MoeCase& m = l.m;
    // A stream of rms about 8, so that a missing or doubled 1 / rms (about 1/8) shows in every output.
    for (float& v : m.x) v *= 8.0f;
    l.x = cuda::DeviceBuffer<float>::from_host(m.x);
    const int64_t parts = (c.hidden + 15) / 16;
    std::vector<__nv_bfloat16> scaled(static_cast<size_t>(c.hidden));
    std::vector<double> squares(static_cast<size_t>(parts));
    double ss = 0;
    for (int64_t d = 0; d < c.hidden; ++d) {
      const float v = m.x[size_t(d)];
      scaled[size_t(d)] = __float2bfloat16_rn(v * l.input_gain[size_t(d)]);
      squares[size_t(d / 16)] += double(v) * v;
      ss += double(v) * v;
    }
    const double inv = 1.0 / std::sqrt(ss / double(c.hidden) + 1e-6);
    for (int64_t d = 0; d < c.hidden; ++d) m.h[size_t(d)] = float(inv * __bfloat162float(scaled[size_t(d)]));
    auto h = cuda::DeviceBuffer<__nv_bfloat16>::from_host(scaled);
    auto sums = cuda::DeviceBuffer<float>::from_host(std::vector<float>(squares.begin(), squares.end()));
    run_and_check_deferred_layer(l, h, sums, /*input_deferred=*/true);
  }
}

// Expert parallelism: a GPU holding experts [8, 16) of 16 computes their share of the block
// (moe_mlp_partial); the other GPUs' choices keep their global weights but are not read here
// (their rows of the expert outputs are poisoned).
TEST(GpuMoe, ExpertParallelShareOfOneGpu) {
  FP4LLM_REQUIRE_GPU();
  std::mt19937 rng(23);
  for (const Case& c : std::vector<Case>{{16, 8, 1, 208, 48}, {16, 8, 40, 208, 48}, {16, 4, 300, 208, 48}}) {
    const MoeCase m(c, rng);
    DenseExperts dense{m, {}};
    cuda::DeviceMoe half;
    half.shape = m.device.shape;
    half.shape.first_expert = 8;
    half.shape.local_experts = 8;
    half.router = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(m.router));
    upload_experts(m.experts, 8, 8, half);
    cuda::MoeWorkspace ws;
    ws.ensure(c.tokens, half.shape, c.inter);
    FP4LLM_CUDA_CHECK(cudaMemset(ws.expert_out.data(), 0xFF, ws.expert_out.bytes()));
    const auto h = cuda::DeviceBuffer<__nv_bfloat16>::from_host(to_bf16(m.h));
    auto partial = test_support::poisoned<float>(size_t(c.tokens * c.hidden));
    cuda::moe_mlp_partial(half, h.data(), c.tokens, partial.data(), ws, nullptr);
    FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = partial.to_host();
    const int64_t stride = std::max<int64_t>(1, c.tokens / 30);
    for (int64_t t = 0; t < c.tokens; t += stride) {
      Route r = reference_route(m, t);
      if (r.gap < 1e-3) continue;
      Route mine;
      for (size_t k = 0; k < r.expert.size(); ++k)
        if (r.expert[k] >= 8) mine.expert.push_back(r.expert[k]), mine.weight.push_back(r.weight[k]);
      const auto [want, bound] = reference_output(m, dense, t, mine);  // x + this GPU's share
      for (int64_t d = 0; d < c.hidden; ++d) {
        const double share = want[size_t(d)] - m.x[size_t(t * c.hidden + d)];
        const float g = got[size_t(t * c.hidden + d)];
        ASSERT_TRUE(std::isfinite(g)) << name(c) << " token " << t << " dim " << d;
        ASSERT_LE(std::fabs(g - share), 5e-3 * bound[size_t(d)] + 1e-5 * std::fabs(want[size_t(d)]) + 1e-30)
            << name(c) << " token " << t << " dim " << d << " got " << g << " want " << share;
      }
    }
  }
}
