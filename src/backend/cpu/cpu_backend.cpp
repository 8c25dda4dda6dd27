#include "backend/cpu/cpu_backend.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cpu/cpu_ops.hpp"
#include "formats/number_formats.hpp"
#include "io/tensor_store.hpp"
#include "util/error.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm::cpu {

struct CpuBackend::Tokens {
  std::vector<int32_t> ids;
  std::vector<int64_t> positions;
  std::vector<int64_t> sequence;  // index into batch.sequences
  const ForwardBatch* batch = nullptr;
  int64_t size() const { return int64_t(ids.size()); }
};

namespace {

std::vector<KvCacheScales> layer_scales(const ModelWeights& w) {
  std::vector<KvCacheScales> s;
  for (const auto& l : w.layers) s.push_back(l.kv_scales);
  return s;
}

NormStyle norm_style(const ModelConfig& c) {
  return c.family == ModelFamily::Gemma3 ? NormStyle::OnePlusWeight : NormStyle::Weight;
}

}  // namespace

CpuBackend::CpuBackend(const ModelWeights& weights, const KvCacheConfig& cache, RankLink link)
    : w_(weights), link_(link), kv_(weights.config, cache, layer_scales(weights)) {
  const ModelConfig& c = w_.config;
  inv_freq_full_ = rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling_factor);
  inv_freq_sliding_ = rope_inv_freq(c.head_dim, c.rope_local_theta, 1.0);
}

void CpuBackend::norm_rows(float* x, int64_t rows, std::span<const float> w) const {
  const int64_t n = int64_t(w.size());
  for (int64_t r = 0; r < rows; ++r) rms_norm(x + r * n, n, w, w_.config.rms_norm_eps, norm_style(w_.config));
}

void CpuBackend::forward(const ForwardBatch& batch, std::vector<float>& logits) {
  const ModelConfig& c = w_.config;
  Tokens t;
  t.batch = &batch;
  std::vector<int64_t> last_rows;
  check_batch(batch, c, kv_.config());
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceChunk& seq = batch.sequences[s];
    for (size_t i = 0; i < seq.tokens.size(); ++i) {
      t.ids.push_back(seq.tokens[i]);
      t.positions.push_back(seq.start_position + int64_t(i));
      t.sequence.push_back(int64_t(s));
    }
    last_rows.push_back(t.size() - 1);
  }

  const int64_t H = c.hidden_size;
  std::vector<float> x(static_cast<size_t>(t.size() * H));
  // Gemma3 scales embeddings by sqrt(hidden) rounded to bf16, as its bf16 checkpoints do.
  const float embed_scale =
      c.family == ModelFamily::Gemma3 ? bf16_to_float(float_to_bf16(std::sqrt(float(H)))) : 1.0f;
  for (int64_t r = 0; r < t.size(); ++r) {
    read_floats(*w_.embed, int64_t(t.ids[size_t(r)]) * H, H, &x[size_t(r * H)]);
    for (int64_t i = 0; i < H; ++i) x[size_t(r * H + i)] *= embed_scale;
  }

  for (int64_t l = 0; l < c.num_layers; ++l) {
    attention_block(l, t, x);
    mlp_block(l, t, x);
  }

  std::vector<int64_t> rows(size_t(t.size()));
  std::iota(rows.begin(), rows.end(), 0);
  if (!batch.all_logits) rows = last_rows;
  std::vector<float> h(rows.size() * size_t(H));
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(&x[size_t(rows[i] * H)], H, &h[i * size_t(H)]);
  norm_rows(h.data(), int64_t(rows.size()), w_.final_norm);
  lm_head(h, int64_t(rows.size()), logits);
  if (c.final_logit_softcapping > 0) {
    const float cap = float(c.final_logit_softcapping);
    for (float& v : logits) v = cap * std::tanh(v / cap);
  }
}

void CpuBackend::sum_over_ranks(std::vector<float>& shares) {
  if (link_.active()) link_.group->all_reduce_sum(link_.rank, shares.data(), shares.size());
}

// Tensor parallelism: each rank holds a slice of the vocabulary's rows; the slices are gathered
// and laid side by side in every row.
void CpuBackend::lm_head(const std::vector<float>& h, int64_t rows, std::vector<float>& logits) {
  const int64_t V = w_.config.vocab_size, ranks = link_.active() ? link_.group->size() : 1, local = V / ranks;
  std::vector<float> mine(size_t(rows * local));
  if (w_.lm_head_nvfp4)
    project(LinearWeight::of(*w_.lm_head_nvfp4), h.data(), rows, mine.data(), fp8_step(rows));
  else
    project(LinearWeight{nullptr, w_.lm_head, w_.lm_head->shape[0], w_.lm_head->shape[1]}, h.data(), rows, mine.data(), false);
  if (ranks == 1) {
    logits = std::move(mine);
    return;
  }
  std::vector<float> gathered(size_t(rows * V));
  link_.group->all_gather(link_.rank, mine.data(), gathered.data(), mine.size());
  logits.resize(size_t(rows * V));
  for (int64_t r = 0; r < ranks; ++r)
    for (int64_t row = 0; row < rows; ++row)
      std::copy_n(&gathered[size_t((r * rows + row) * local)], local, &logits[size_t(row * V + r * local)]);
}

std::span<const int32_t> CpuBackend::cache_table(int64_t layer, const SequenceChunk& seq) const {
  return kv_.config().has_window_pool() && w_.config.layer_sliding[size_t(layer)] ? seq.window_block_table
                                                                                  : seq.block_table;
}

void CpuBackend::attention_block(int64_t layer, const Tokens& t, std::vector<float>& x) {
  const ModelConfig& c = w_.config;
  const LayerWeights& L = w_.layers[size_t(layer)];
  const int64_t H = c.hidden_size, D = c.head_dim, T = t.size();
  const int64_t qd = c.num_heads * D, kvd = c.num_kv_heads * D;
  std::vector<float> h(x);
  norm_rows(h.data(), T, L.input_norm);
  std::vector<float> q(static_cast<size_t>(T * qd)), k(size_t(T * kvd)), v(size_t(T * kvd));
  const bool fp8 = fp8_step(T);
  project(L.q, h.data(), T, q.data(), fp8);
  project(L.k, h.data(), T, k.data(), fp8);
  project(L.v, h.data(), T, v.data(), fp8);

  // Per-head RMSNorm before RoPE (Qwen3 and Gemma3 alike), then RoPE with the layer's base.
  const auto& inv_freq = c.layer_sliding[size_t(layer)] ? inv_freq_sliding_ : inv_freq_full_;
  const NormStyle style = norm_style(c);
  for (int64_t r = 0; r < T; ++r) {
    for (int64_t hd = 0; hd < c.num_heads; ++hd) {
      float* qh = &q[size_t(r * qd + hd * D)];
      rms_norm(qh, D, L.q_norm, c.rms_norm_eps, style);
      apply_rope(qh, D, t.positions[size_t(r)], inv_freq);
    }
    for (int64_t hd = 0; hd < c.num_kv_heads; ++hd) {
      float* kh = &k[size_t(r * kvd + hd * D)];
      rms_norm(kh, D, L.k_norm, c.rms_norm_eps, style);
      apply_rope(kh, D, t.positions[size_t(r)], inv_freq);
    }
    const SequenceChunk& seq = t.batch->sequences[size_t(t.sequence[size_t(r)])];
    const int64_t pos = t.positions[size_t(r)];
    kv_.write(layer, cache_table(layer, seq)[size_t(pos / KvCacheConfig::kBlockSize)],
              pos % KvCacheConfig::kBlockSize, &k[size_t(r * kvd)], &v[size_t(r * kvd)]);
  }

  std::vector<float> attn(static_cast<size_t>(T * qd));
  attend(layer, t, q, attn);
  std::vector<float> o(static_cast<size_t>(T * H));
  project(L.o, attn.data(), T, o.data(), fp8);
  sum_over_ranks(o);
  if (c.family == ModelFamily::Gemma3) norm_rows(o.data(), T, L.post_attention_norm);
  for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
}

// Attention reads K and V back from the cache, including the tokens just written, so the
// cache's rounding (FP8 or BF16) is part of the specification the GPU kernels must match.
void CpuBackend::attend(int64_t layer, const Tokens& t, const std::vector<float>& q,
                        std::vector<float>& out) {
  const ModelConfig& c = w_.config;
  const int64_t D = c.head_dim, qd = c.num_heads * D, group = c.num_heads / c.num_kv_heads;
  const bool sliding = c.layer_sliding[size_t(layer)];
  const float scale = float(c.attention_scale);
  const int64_t jobs = int64_t(t.batch->sequences.size()) * c.num_kv_heads;
  parallel_for(jobs, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> keys, values, scores;
    for (int64_t job = begin; job < end; ++job) {
      const int64_t s = job / c.num_kv_heads, g = job % c.num_kv_heads;
      const SequenceChunk& seq = t.batch->sequences[size_t(s)];
      const int64_t len = seq.start_position + int64_t(seq.tokens.size());
      const std::span<const int32_t> table = cache_table(layer, seq);
      keys.resize(size_t(len * D));
      values.resize(size_t(len * D));
      // Only the keys some new token sees: a window pool holds no others.
      const int64_t seen = sliding ? std::max<int64_t>(0, seq.start_position - c.sliding_window + 1) : 0;
      for (int64_t p = seen; p < len; ++p) {
        const int64_t block = table[size_t(p / KvCacheConfig::kBlockSize)];
        kv_.read_k(layer, block, p % KvCacheConfig::kBlockSize, g, &keys[size_t(p * D)]);
        kv_.read_v(layer, block, p % KvCacheConfig::kBlockSize, g, &values[size_t(p * D)]);
      }
      for (int64_t r = 0; r < t.size(); ++r) {
        if (t.sequence[size_t(r)] != s) continue;
        const int64_t pos = t.positions[size_t(r)];
        // Sliding layers see the last `sliding_window` keys, the current one included.
        const int64_t first = sliding ? std::max<int64_t>(0, pos - c.sliding_window + 1) : 0;
        for (int64_t hq = g * group; hq < (g + 1) * group; ++hq) {
          const float* qv = &q[size_t(r * qd + hq * D)];
          scores.assign(size_t(pos - first + 1), 0.0f);
          float max_score = -INFINITY;
          for (int64_t j = first; j <= pos; ++j) {
            float dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += qv[d] * keys[size_t(j * D + d)];
            scores[size_t(j - first)] = dot * scale;
            max_score = std::max(max_score, dot * scale);
          }
          float sum = 0;
          for (float& sc : scores) sum += (sc = std::exp(sc - max_score));
          float* o = &out[size_t(r * qd + hq * D)];
          std::fill_n(o, D, 0.0f);
          for (int64_t j = first; j <= pos; ++j) {
            const float p = scores[size_t(j - first)] / sum;
            for (int64_t d = 0; d < D; ++d) o[d] += p * values[size_t(j * D + d)];
          }
        }
      }
    }
  });
}

void CpuBackend::mlp_block(int64_t layer, const Tokens& t, std::vector<float>& x) {
  const ModelConfig& c = w_.config;
  const LayerWeights& L = w_.layers[size_t(layer)];
  const int64_t T = t.size(), H = c.hidden_size;
  std::vector<float> h(x), m(size_t(T * H));
  const bool gemma = c.family == ModelFamily::Gemma3;
  norm_rows(h.data(), T, gemma ? L.pre_feedforward_norm : L.post_attention_norm);
  if (L.moe)
    moe_mlp(*L.moe, h.data(), T, m.data());
  else
    dense_mlp(L.mlp, h.data(), T, m.data(), fp8_step(T));
  sum_over_ranks(m);
  if (gemma) norm_rows(m.data(), T, L.post_feedforward_norm);
  for (size_t i = 0; i < x.size(); ++i) x[i] += m[i];
}

void CpuBackend::project(const LinearWeight& w, const float* x, int64_t rows, float* y, bool fp8) const {
  if (fp8 && w.nvfp4) {
    linear_fp8(*w.nvfp4, x, rows, y);
  } else if (bf16_products_) {
    linear(w, bf16_rounded(x, rows * w.in_features).data(), rows, y);
  } else {
    linear(w, x, rows, y);
  }
}

void CpuBackend::dense_mlp(const MlpWeights& m, const float* h, int64_t rows, float* out, bool fp8) {
  const int64_t inter = m.gate.out_features;
  std::vector<float> gate(static_cast<size_t>(rows * inter)), up(size_t(rows * inter));
  project(m.gate, h, rows, gate.data(), fp8);
  project(m.up, h, rows, up.data(), fp8);
  const bool gelu = w_.config.family == ModelFamily::Gemma3;
  for (size_t i = 0; i < gate.size(); ++i) gate[i] = (gelu ? gelu_tanh(gate[i]) : silu(gate[i])) * up[i];
  project(m.down, gate.data(), rows, out, fp8);
}

// Qwen3-MoE routing: softmax over all experts in float32, top-k, renormalised when
// norm_topk_prob; tokens are grouped by expert so each expert runs once per step. The router
// sees the activations rounded to BF16, as it does in a BF16 transformers model and on the GPU:
// the top-k choice is discontinuous, so the backends must agree on its input, not just nearly.
void CpuBackend::moe_mlp(const MoeWeights& m, const float* h, int64_t rows, float* out) {
  const ModelConfig& c = w_.config;
  const int64_t E = c.num_experts, H = c.hidden_size, K = c.experts_per_token;
  std::vector<std::vector<std::pair<int64_t, float>>> routed(static_cast<size_t>(E));  // (row, weight)
  std::vector<float> probs(static_cast<size_t>(E));
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<float> h16 = bf16_rounded(h + r * H, H);
    float max_logit = -INFINITY;
    for (int64_t e = 0; e < E; ++e) {
      float dot = 0;
      for (int64_t i = 0; i < H; ++i) dot += m.router[size_t(e * H + i)] * h16[size_t(i)];
      probs[size_t(e)] = dot;
      max_logit = std::max(max_logit, dot);
    }
    float sum = 0;
    for (float& p : probs) sum += (p = std::exp(p - max_logit));
    for (float& p : probs) p /= sum;
    std::vector<int64_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return probs[size_t(a)] > probs[size_t(b)]; });
    float top_sum = 0;
    for (int64_t k = 0; k < K; ++k) top_sum += probs[size_t(order[size_t(k)])];
    for (int64_t k = 0; k < K; ++k) {
      const int64_t e = order[size_t(k)];
      routed[size_t(e)].emplace_back(r, c.norm_topk_prob ? probs[size_t(e)] / top_sum : probs[size_t(e)]);
    }
  }
  // Expert parallelism: this rank runs only its experts; the others' shares are summed in after
  // the call, with the tensor-sharded experts' partial products.
  std::fill_n(out, rows * H, 0.0f);
  for (int64_t e = m.first_expert; e < m.first_expert + int64_t(m.experts.size()); ++e) {
    const auto& list = routed[size_t(e)];
    if (list.empty()) continue;
    const int64_t n = int64_t(list.size());
    std::vector<float> in(static_cast<size_t>(n * H)), res(size_t(n * H));
    for (int64_t i = 0; i < n; ++i) std::copy_n(h + list[size_t(i)].first * H, H, &in[size_t(i * H)]);
    dense_mlp(m.experts[size_t(e - m.first_expert)], in.data(), n, res.data());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < H; ++d)
        out[list[size_t(i)].first * H + d] += list[size_t(i)].second * res[size_t(i * H + d)];
  }
}

}  // namespace fp4llm::cpu
