#include "model/tensor_parallel.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "formats/number_formats.hpp"
#include "util/error.hpp"

namespace fp4llm {

TensorParallelPlan TensorParallelPlan::make(const ModelConfig& c, int64_t size, bool expert_parallel) {
  if (size < 1) fail("--tensor-parallel-size must be at least 1, got {}", size);
  TensorParallelPlan p;
  p.size = size;
  if (c.num_heads % size != 0)
    fail("--tensor-parallel-size {}: the model's {} attention heads do not divide evenly", size, c.num_heads);
  p.heads_per_rank = c.num_heads / size;
  if (c.num_kv_heads >= size) {
    if (c.num_kv_heads % size != 0)
      fail("--tensor-parallel-size {}: the model's {} KV heads do not divide evenly", size, c.num_kv_heads);
    p.kv_heads_per_rank = c.num_kv_heads / size;
  } else {
    if (size % c.num_kv_heads != 0)
      fail("--tensor-parallel-size {}: {} KV heads cannot be replicated evenly over the ranks", size, c.num_kv_heads);
    p.kv_heads_per_rank = 1;
    p.kv_replicated = true;
  }
  if (c.has_dense_mlp() && c.intermediate_size % (size * kNvfp4BlockSize) != 0)
    fail("--tensor-parallel-size {}: intermediate size {} does not split into whole 16-value NVFP4 blocks per rank",
         size, c.intermediate_size);
  p.intermediate_per_rank = c.intermediate_size / size;
  p.expert_parallel = expert_parallel;
  if (c.num_experts > 0 && expert_parallel) {
    if (c.num_experts % size != 0)
      fail("--tensor-parallel-size {} --enable-expert-parallel: the model's {} experts do not divide evenly", size,
           c.num_experts);
    p.experts_per_rank = c.num_experts / size;
    p.moe_intermediate_per_rank = c.moe_intermediate_size;
  } else if (c.num_experts > 0) {
    if (c.moe_intermediate_size % (size * kNvfp4BlockSize) != 0)
      fail("--tensor-parallel-size {}: the experts' intermediate size {} does not split into whole 16-value NVFP4 "
           "blocks per rank (--enable-expert-parallel splits whole experts instead)",
           size, c.moe_intermediate_size);
    p.experts_per_rank = c.num_experts;
    p.moe_intermediate_per_rank = c.moe_intermediate_size / size;
  }
  if (c.vocab_size % size != 0)
    fail("--tensor-parallel-size {}: the vocabulary of {} tokens does not divide evenly", size, c.vocab_size);
  p.vocab_per_rank = c.vocab_size / size;
  return p;
}

TensorParallelPlan::Range TensorParallelPlan::q_rows(const ModelConfig& c, int64_t rank) const {
  return {rank * heads_per_rank * c.head_dim, (rank + 1) * heads_per_rank * c.head_dim};
}

// Replicated KV heads: rank r's query heads all belong to one KV head's group.
TensorParallelPlan::Range TensorParallelPlan::kv_rows(const ModelConfig& c, int64_t rank) const {
  const int64_t first = kv_replicated ? rank * heads_per_rank / (c.num_heads / c.num_kv_heads) : rank * kv_heads_per_rank;
  return {first * c.head_dim, (first + kv_heads_per_rank) * c.head_dim};
}

TensorParallelPlan::Range TensorParallelPlan::mlp_rows(int64_t rank) const {
  return {rank * intermediate_per_rank, (rank + 1) * intermediate_per_rank};
}

TensorParallelPlan::Range TensorParallelPlan::moe_rows(int64_t rank) const {
  if (expert_parallel) return {0, moe_intermediate_per_rank};
  return {rank * moe_intermediate_per_rank, (rank + 1) * moe_intermediate_per_rank};
}

TensorParallelPlan::Range TensorParallelPlan::vocab_rows(int64_t rank) const {
  return {rank * vocab_per_rank, (rank + 1) * vocab_per_rank};
}

std::string TensorParallelPlan::describe(const ModelConfig& c) const {
  std::string s = fmt::format("tensor parallel over {} ranks: each holds {} of {} query heads, {} of {} KV heads{}", size,
                              heads_per_rank, c.num_heads, kv_heads_per_rank, c.num_kv_heads,
                              kv_replicated ? " (replicated)" : "");
  if (c.has_dense_mlp()) s += fmt::format(", {} of {} MLP columns", intermediate_per_rank, c.intermediate_size);
  if (c.num_experts > 0 && expert_parallel)
    s += fmt::format(", {} of {} whole experts", experts_per_rank, c.num_experts);
  else if (c.num_experts > 0)
    s += fmt::format(", {} of {} columns of every expert", moe_intermediate_per_rank, c.moe_intermediate_size);
  return s + fmt::format(", {} of {} vocabulary rows", vocab_per_rank, c.vocab_size);
}

ModelConfig rank_config(const ModelConfig& c, const TensorParallelPlan& plan) {
  ModelConfig r = c;
  r.num_heads = plan.heads_per_rank;
  r.num_kv_heads = plan.kv_heads_per_rank;
  r.intermediate_size = plan.intermediate_per_rank;
  r.moe_intermediate_size = plan.moe_intermediate_per_rank;
  return r;
}

namespace {

const QuantizedLinear& nvfp4_of(const LinearWeight& w, const char* role, int64_t layer) {
  return w.nvfp4_for("tensor parallelism", layer, role);
}

// Rows [begin, end) of a 2-D tensor: a view sharing its bytes.
TensorView tensor_rows(const TensorView& t, int64_t begin, int64_t end) {
  if (t.shape.size() != 2) fail("{}: expected a matrix to split by rows", t.describe());
  const size_t row_bytes = t.data.size() / size_t(t.shape[0]);
  TensorView v = t;
  v.shape[0] = end - begin;
  v.data = t.data.slice(size_t(begin) * row_bytes, size_t(end - begin) * row_bytes);
  return v;
}

// A gated MLP's slice of intermediate columns: gate/up rows and down input features [cols).
// `expert` names the roles in errors ("expert gate_proj"); `keep` stores a shard and returns its
// address.
template <typename Keep>
MlpWeights shard_mlp(const MlpWeights& m, TensorParallelPlan::Range cols, bool expert, int64_t layer, Keep keep) {
  const auto role = [expert](const char* name) { return expert ? std::string("expert ") + name : std::string(name); };
  MlpWeights s = m;
  s.gate = LinearWeight::of(*keep(shard_rows(nvfp4_of(m.gate, role("gate_proj").c_str(), layer), cols.begin, cols.end)));
  s.up = LinearWeight::of(*keep(shard_rows(nvfp4_of(m.up, role("up_proj").c_str(), layer), cols.begin, cols.end)));
  s.down = LinearWeight::of(*keep(shard_columns(nvfp4_of(m.down, role("down_proj").c_str(), layer), cols.begin, cols.end)));
  return s;
}

// The rank's experts: whole ones (expert parallel) or every expert's slice of intermediate
// columns.
template <typename Keep>
std::vector<MlpWeights> shard_experts(const MoeWeights& moe, const TensorParallelPlan& plan, int64_t rank,
                                      int64_t layer, Keep keep) {
  const TensorParallelPlan::Range mine = plan.experts(rank);
  std::vector<MlpWeights> out(moe.experts.begin() + mine.begin, moe.experts.begin() + mine.end);
  if (plan.expert_parallel) return out;
  for (MlpWeights& e : out) e = shard_mlp(e, plan.moe_rows(rank), true, layer, keep);
  return out;
}

}  // namespace

std::unique_ptr<RankWeights> shard_weights(const ModelWeights& w, const TensorParallelPlan& plan, int64_t rank) {
  const ModelConfig& c = w.config;
  if (rank < 0 || rank >= plan.size) fail("tensor-parallel rank {} outside 0..{}", rank, plan.size - 1);
  auto out = std::make_unique<RankWeights>();
  ModelWeights& r = out->weights;
  r.config = rank_config(c, plan);
  r.embed = w.embed;
  r.final_norm = w.final_norm;
  const auto keep = [&](QuantizedLinear q) -> const QuantizedLinear* { return &out->linears.emplace_back(std::move(q)); };
  const TensorParallelPlan::Range vocab = plan.vocab_rows(rank);
  if (w.lm_head_nvfp4)
    r.lm_head_nvfp4 = keep(shard_rows(*w.lm_head_nvfp4, vocab.begin, vocab.end));
  else
    r.lm_head = &out->tensors.emplace_back(tensor_rows(*w.lm_head, vocab.begin, vocab.end));
  const auto q_rows = plan.q_rows(c, rank), kv_rows = plan.kv_rows(c, rank), mlp = plan.mlp_rows(rank);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& L = w.layers[i];
    const int64_t layer = int64_t(i);
    LayerWeights s = L;  // norms, KV scales
    s.q = LinearWeight::of(*keep(shard_rows(nvfp4_of(L.q, "q_proj", layer), q_rows.begin, q_rows.end)));
    s.k = LinearWeight::of(*keep(shard_rows(nvfp4_of(L.k, "k_proj", layer), kv_rows.begin, kv_rows.end)));
    s.v = LinearWeight::of(*keep(shard_rows(nvfp4_of(L.v, "v_proj", layer), kv_rows.begin, kv_rows.end)));
    s.o = LinearWeight::of(*keep(shard_columns(nvfp4_of(L.o, "o_proj", layer), q_rows.begin, q_rows.end)));
    if (L.moe) {
      if (L.moe->first_expert != 0 || int64_t(L.moe->experts.size()) != c.num_experts)
        fail("layer {}: the MoE layer to split is already a shard", layer);
      s.moe->experts = shard_experts(*L.moe, plan, rank, layer, keep);
      s.moe->first_expert = plan.experts(rank).begin;
      s.mlp = {};
    } else {
      s.mlp = shard_mlp(L.mlp, mlp, false, layer, keep);
    }
    r.layers.push_back(std::move(s));
  }
  return out;
}

TensorParallelPlan::Range TensorParallelPlan::experts(int64_t rank) const {
  const int64_t first = expert_parallel ? rank * experts_per_rank : 0;
  return {first, first + experts_per_rank};
}

QuantizedLinear shard_rows(const QuantizedLinear& w, int64_t begin, int64_t end) {
  if (begin < 0 || end > w.out_features || begin > end)
    fail("shard of rows [{}, {}) outside the {} rows of the weight", begin, end, w.out_features);
  QuantizedLinear s = w;
  s.out_features = end - begin;
  const size_t code_row = size_t(w.in_features / 2), scale_row = size_t(w.in_features / kNvfp4BlockSize);
  s.packed = w.packed.slice(size_t(begin) * code_row, size_t(end - begin) * code_row);
  s.block_scales = w.block_scales.slice(size_t(begin) * scale_row, size_t(end - begin) * scale_row);
  return s;
}

QuantizedLinear shard_columns(const QuantizedLinear& w, int64_t begin, int64_t end) {
  if (begin % kNvfp4BlockSize != 0 || end % kNvfp4BlockSize != 0 || begin < 0 || end > w.in_features || begin > end)
    fail("shard of input features [{}, {}) of {} is not made of whole 16-value blocks", begin, end, w.in_features);
  QuantizedLinear s = w;
  s.in_features = end - begin;
  const size_t rows = size_t(w.out_features);
  std::vector<uint8_t> codes(rows * size_t(s.in_features / 2)), scales(rows * size_t(s.in_features / kNvfp4BlockSize));
  for (size_t r = 0; r < rows; ++r) {
    std::memcpy(&codes[r * size_t(s.in_features / 2)], w.packed.data() + r * size_t(w.in_features / 2) + begin / 2,
                size_t(s.in_features / 2));
    std::memcpy(&scales[r * size_t(s.in_features / kNvfp4BlockSize)],
                w.block_scales.data() + r * size_t(w.in_features / kNvfp4BlockSize) + begin / kNvfp4BlockSize,
                size_t(s.in_features / kNvfp4BlockSize));
  }
  s.packed = Bytes::owned(std::move(codes));
  s.block_scales = Bytes::owned(std::move(scales));
  return s;
}

}  // namespace fp4llm
