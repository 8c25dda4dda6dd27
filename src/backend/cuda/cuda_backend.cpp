#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/early_launch.hpp"

#include <algorithm>
#include <cmath>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_ops.hpp"
#include "backend/cuda/flash_prefill.hpp"
#include "backend/cuda/kv_cache_layout.hpp"
#include "backend/cuda/l2_ahead.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/narrow_rows.hpp"
#include "formats/number_formats.hpp"
#include "util/error.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

namespace {

template <typename T>
T* offset_ptr(uint8_t* base, size_t bytes) {
  return reinterpret_cast<T*>(base + bytes);
}

size_t align8(size_t n) { return (n + 7) / 8 * 8; }

// Decode attention runs on tensor cores where the shape allows (measured faster on the H100,
// docs/PERFORMANCE.md); FP4LLM_MMA_ATTENTION=0 selects the CUDA-core kernel, for comparison.
bool use_mma_attention() {
  static const bool on = knob_on("FP4LLM_MMA_ATTENTION");
  return on;
}

// Decode steps of up to kMaxNormedRows tokens let the products after o_proj (gate_up, or the MoE
// router) and after down_proj or an MoE layer's experts (the next qkv) normalise their input from
// the residual stream (Gemma3: update it first with the last product; after MoE experts: with
// their weighted rows) instead of a norm or combine kernel (nvfp4_linear_normed,
// moe_route_normed). On by default for MoE models only: on the H200 (2026-12-05, batch 1) it
// gained 2.6% on Qwen3-30B-A3B (3.7% with the routing in the experts) and lost 5% on Qwen3-8B,
// whose 1,536 gate_up blocks each normalise the row. FP4LLM_NORM_PROLOGUE=1 turns it on for
// every model, =0 off; =qkv leaves dense models' gate_up its norm kernel and has only the qkv take
// its norm (measured on the H100, 2026-12-05: 317.0 against 334.9 tok/s on Qwen3-8B at batch 1,
// so off), MoE models as by default.
NormsInProducts norm_prologue(const ModelConfig& c) {
  static const bool qkv_only = knob_is("FP4LLM_NORM_PROLOGUE", "qkv");
  static const bool dense = knob_flag("FP4LLM_NORM_PROLOGUE", false), moe = qkv_only || knob_flag("FP4LLM_NORM_PROLOGUE", true);
  if (c.num_experts > 0) return {moe, moe};
  return {dense, dense || qkv_only};
}

// Dense Qwen3 decode steps of up to 16 tokens without the norm kernels between o_proj and gate_up
// and between down_proj and the next qkv: the first product of each pair leaves the stream times
// the gains and partial sums of squares, the second scales its results by 1 / rms
// (gemv_deferred_norm.cuh); Qwen3-MoE's one-token steps end each layer with the experts' down
// projection adding their sum (moe_norm_deferred). Measured (H100, 2026-12-07, same calls): Qwen3-8B
// batch 1 370.9 -> 389.8 and 370.1 -> 391.5 tok/s, batch 16 4,906 -> 4,888; Qwen3-30B-A3B batch 1
// 413.8 -> 432.5 and 412.2 -> 437.4. FP4LLM_NORM_DEFERRED=0: the norm kernels (and the MoE
// qkv's prologue), as before.
bool norm_deferred_requested() {
  static const std::string_view value = knob_text("FP4LLM_NORM_DEFERRED");
  static const bool on = value.empty() || value == "1" || value == "router";
  return on;
}

// Qwen3-MoE's one-token steps: o_proj defers the MoE layer's input norm too, so that the router
// (16 blocks, each normalising the stream before its dot products: 5.1 us a layer on the step's
// critical path, twenty-fourth session's trace) and the experts' gate/up read the stream times
// the gains and scale by 1 / rms. Measured (H100, 2026-12-07, same call, Qwen3-30B-A3B batch 1):
// 436.4 and 440.0 tok/s without it, 445.2 with it; the kernel trace's step 2,222 -> 2,195 us, the
// router 4.96 -> 4.10 us. FP4LLM_NORM_DEFERRED=1: the router normalises the stream, as before.
bool router_norm_deferred_requested() {
  static const std::string_view value = knob_text("FP4LLM_NORM_DEFERRED");
  static const bool on = value.empty() || value == "router";
  return on;
}

// FP4LLM_ROPE_IN_ATTENTION=1: decode steps (one token per sequence) leave q/k RMSNorm, RoPE and the
// cache write to the decode attention kernel (the tensor-core one, or the CUDA-core one at
// head_dim 256) instead of the rope kernel (attention_rope.cuh; off: with the key rows measured
// slower, H100, 2026-12-06: Qwen3-30B-A3B batch 1 385.6 -> 381.1 tok/s).
bool rope_in_attention_requested() {
  static const bool on = knob_is("FP4LLM_ROPE_IN_ATTENTION", "1");
  return on;
}

// FP4LLM_FLASH_ROPE=1: prefill-sized steps leave the queries' norm and RoPE to the flash kernel,
// which reads them raw from the q|k|v rows (flash_prefill_attention_with_rope); the rope kernel
// writes only the keys and values. A 2,048-token Qwen3-8B prompt's rope kernel moves 88 MB a
// layer (q|k|v read as float32, q written as float32 and read again by the flash kernel), 40 us
// of its 1.46 ms; two thirds of that are the queries. Measured slower, so off (H100, 2026-12-07,
// same call: the prompt 61.5 and 62.0 -> 62.1 ms; the rope kernel 1,562 -> 591 us a prompt, the
// attention 6,666 -> 7,617 us).
bool flash_rope_requested() {
  static const bool on = knob_is("FP4LLM_FLASH_ROPE", "1");
  return on;
}

// Fewest keys per decode-attention split (FP4LLM_ATTN_MIN_SPLIT_KEYS, a multiple of 32, to
// compare). Fewer keys per block shorten its chain of dependent instructions, but each extra split
// adds the merge of partial results; on the H200 (2026-12-04, Qwen3-8B shape, 128-256 keys) 256
// beat 128 by 3% at batch 1 and 2% at batch 16, and 32 or 64 lost.
int64_t min_split_keys() {
  static const int64_t keys = std::clamp<int64_t>(knob_int("FP4LLM_ATTN_MIN_SPLIT_KEYS", 256) / 32 * 32, 32, 4096);
  return keys;
}

// Decode attention overlaps its block table and first cache blocks with the rope kernel before it
// (AttentionParams::cache_blocks_before_wait), by default since the twenty-first session's A/B
// (H100, same call: batch 1 Qwen3-30B-A3B 383.7 -> 394.4, Qwen3-8B 350.4 -> 357.6, Gemma3-27B
// 124.6 -> 127.4 tok/s). FP4LLM_ATTN_EARLY_BLOCKS=0: the wait first, as before.
bool attention_early_blocks() {
  static const bool on = knob_on("FP4LLM_ATTN_EARLY_BLOCKS");
  return on;
}

// How the last split of a decode attention merges the splits' partial results
// (FP4LLM_ATTN_SPLIT_MERGE: by rows by default; chain and two_pass, the former merges, to compare).
SplitMerge split_merge() {
  static const SplitMerge merge = knob_is("FP4LLM_ATTN_SPLIT_MERGE", "chain")      ? SplitMerge::kChain
                                  : knob_is("FP4LLM_ATTN_SPLIT_MERGE", "two_pass") ? SplitMerge::kTwoPass
                                                                                   : SplitMerge::kByRows;
  return merge;
}

// Blocks per SM that decode attention's splits aim at (FP4LLM_ATTN_SPLIT_BLOCKS, 1 to 16; 2 by
// default, to compare). At long contexts each warp walks its split's cache blocks one after
// another (a chain of dependent instructions): more splits shorten the chains and put more warps
// on the SMs, at the price of more partial results to merge.
int64_t split_blocks_per_sm() {
  static const int64_t blocks = std::clamp<int64_t>(knob_int("FP4LLM_ATTN_SPLIT_BLOCKS", 2), 1, 16);
  return blocks;
}

// Key-range splits of a decode step of `tokens` tokens: enough (token, kv head, split) blocks for
// split_blocks_per_sm() a SM, at most 16 times that (32 at the default, the cap before the knob).
// It does not depend on the context (each token splits its own range), so decode graphs stay valid.
int64_t attention_splits(int64_t tokens, int64_t kv_heads, int num_sms) {
  const int64_t blocks = tokens * kv_heads, per_sm = split_blocks_per_sm();
  return std::clamp<int64_t>((per_sm * num_sms + blocks - 1) / blocks, 1, 16 * per_sm);
}

// BF16 scratch the prefill path (more than kMaxDecodeRows rows) needs: the most a layer matrix
// needs (prefill_scratch_elements) for `tokens` rows, and the lm_head's (a vocabulary-sized
// matrix) only when more than that many logit rows are asked for (all-position logits, or
// batches above 64).
int64_t step_scratch_elements(const DeviceModel& m, int64_t tokens, int64_t logit_rows) {
  int64_t most = 0;
  if (tokens > kMaxDecodeRows)
    for (const DeviceLayer& l : m.layers)
      for (const DeviceNvfp4Linear* w : {&l.qkv, &l.o, &l.gate_up, &l.down}) most = std::max(most, prefill_scratch_elements(*w));
  if (logit_rows > kMaxDecodeRows && m.lm_head_nvfp4) most = std::max(most, prefill_scratch_elements(*m.lm_head_nvfp4));
  return most;
}

// Position `pos`'s row in a layer's cache: its block's first row plus its place in the block.
int64_t cache_slot(std::span<const int32_t> table, int64_t pos) {
  return int64_t(table[size_t(pos / KvCacheConfig::kBlockSize)]) * KvCacheConfig::kBlockSize +
         pos % KvCacheConfig::kBlockSize;
}

// One sequence's table, padded with block 0 to the step's row length.
void append_table_row(std::vector<int32_t>& tables, std::span<const int32_t> table, int64_t row_length) {
  tables.insert(tables.end(), table.begin(), table.end());
  tables.resize(tables.size() + size_t(std::max<int64_t>(row_length, 1)) - table.size(), 0);
}

}  // namespace

// The host-side description of one step, in the layout uploaded to meta_.
struct CudaBackend::Step {
  std::vector<int32_t> ids, positions, token_seq, logit_rows, block_tables, window_tables;
  std::vector<QueryTile> tiles;  // prefill steps: query tiles for the flash kernel
  std::vector<int64_t> slots, window_slots;  // window_*: the sliding layers' window pool, if any
  int64_t tokens = 0, max_blocks = 0, max_position = 0;
  bool one_token_per_sequence = false;  // a decode step: no token reads a key of this step but its own
  // Offsets of each array in meta_.
  size_t ids_at = 0, positions_at = 0, token_seq_at = 0, rows_at = 0, tables_at = 0, slots_at = 0, tiles_at = 0;
  size_t window_tables_at = 0, window_slots_at = 0;
  size_t bytes = 0;
};

static_assert(KvCacheConfig::kBlockSize == kCacheBlockSlots, "kv_cache_layout.hpp's blocks are the cache's");

CudaBackend::CudaBackend(DeviceModel model, const KvCacheConfig& cache, bool enforce_eager, Communicator comm)
    : model_(std::move(model)), enforce_eager_(enforce_eager), cache_(cache), comm_(comm) {
  const ModelConfig& c = model_.config;
  int device = 0;
  FP4LLM_CUDA_CHECK(cudaGetDevice(&device));
  FP4LLM_CUDA_CHECK(cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, device));
  FP4LLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  FP4LLM_CUBLAS_CHECK(cublasCreate(&linear_ws_.cublas));
  // A fixed workspace: cuBLAS must not allocate while a graph is captured.
  cublas_workspace_ = DeviceBuffer<uint8_t>(size_t(32) << 20);
  FP4LLM_CUBLAS_CHECK(cublasSetWorkspace(linear_ws_.cublas, cublas_workspace_.data(), cublas_workspace_.bytes()));
  early_launch_all_default() = c.num_experts == 0;  // measured per model kind (early_launch.hpp)
  linear_ws_.pipeline_unclustered = pipelined_gemv_default(c.num_experts > 0);
  prepare_gemv_scratch(linear_ws_);  // now, so that the memory report counts it
  early_launch_default_roles() =
      c.num_experts == 0 ? kEveryEarlyLaunchRole : early_launch_role_bit("rope") | early_launch_role_bit("o_proj");
  if (cache.num_blocks <= 0) fail("CUDA backend: the KV cache needs at least one block");
  if (c.num_heads / c.num_kv_heads > max_query_group(c.head_dim))
    fail("CUDA backend: {} query heads per kv head with head_dim {} is not supported", c.num_heads / c.num_kv_heads, c.head_dim);
  const size_t element = cache.dtype == KvCacheDtype::Fp8E4M3 ? 1 : 2;
  const size_t per_block = size_t(KvCacheConfig::kBlockSize * c.num_kv_heads * c.head_dim) * element;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const size_t bytes = per_block * size_t(windowed(l) ? cache.num_window_blocks : cache.num_blocks);
    // Zeroed: a tile of keys may read a masked key of a window-pool block never written.
    k_cache_.push_back(DeviceBuffer<uint8_t>::zeroed(bytes));
    v_cache_.push_back(DeviceBuffer<uint8_t>::zeroed(bytes));
  }
  inv_freq_full_ = DeviceBuffer<float>::from_host(cpu::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling_factor));
  inv_freq_sliding_ = DeviceBuffer<float>::from_host(cpu::rope_inv_freq(c.head_dim, c.rope_local_theta, 1.0));
  // Partial results for the most (token, split) pairs a decode step can have.
  int64_t most_splits = 0;
  for (int64_t t = 1; t <= kMaxDecodeRows; ++t)
    most_splits = std::max(most_splits, t * attention_splits(t, c.num_kv_heads, num_sms_));
  const size_t attn_slots = size_t(most_splits * c.num_heads);
  attn_partial_out_ = DeviceBuffer<float>(attn_slots * size_t(c.head_dim));
  attn_partial_ml_ = DeviceBuffer<float>(attn_slots * 2);
  attn_counters_ = DeviceBuffer<unsigned>::zeroed(size_t(kMaxDecodeRows * c.num_kv_heads));
}

CudaBackend::~CudaBackend() {
  drop_graphs();
  if (meta_host_) cudaFreeHost(meta_host_);
  if (linear_ws_.cublas) cublasDestroy(linear_ws_.cublas);
  if (stream_) cudaStreamDestroy(stream_);
}

GpuMemory CudaBackend::memory() const {
  GpuMemory m;
  m.weights = model_.weight_bytes();
  for (size_t l = 0; l < k_cache_.size(); ++l) m.kv_cache += k_cache_[l].bytes() + v_cache_[l].bytes();
  m.workspace = linear_ws_.dequantized.bytes() + x_.bytes() + qkv_.bytes() +
                q_.bytes() + o_.bytes() + gate_up_.bytes() + logits_.bytes() + h_.bytes() + attn_.bytes() +
                act_.bytes() + gemv_scratch_bytes() + rows_.bytes() + x_alt_.bytes() + norm_sums_.bytes() + moe_ws_.bytes() + lm_local_.bytes() + lm_gathered_.bytes() + attn_partial_out_.bytes() + attn_partial_ml_.bytes() + attn_counters_.bytes() + meta_.bytes();
  return m;
}

CudaBackend::Step CudaBackend::plan(const ForwardBatch& batch) const {
  const ModelConfig& c = model_.config;
  Step s;
  // Table rows padded to a power of two, so a graph serves many steps of a growing context.
  for (const SequenceChunk& seq : batch.sequences)
    s.max_blocks = std::max<int64_t>(s.max_blocks, int64_t(seq.block_table.size()));
  s.max_blocks = int64_t(std::bit_ceil(uint64_t(std::max<int64_t>(s.max_blocks, 16))));
  check_batch(batch, c, cache_);
  QueryTilePlan tiles;
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const SequenceChunk& seq = batch.sequences[i];
    tiles.add_sequence(int64_t(s.ids.size()), int64_t(seq.tokens.size()), seq.start_position);
    for (size_t j = 0; j < seq.tokens.size(); ++j) {
      const int32_t id = seq.tokens[j];
      const int64_t pos = seq.start_position + int64_t(j);
      s.ids.push_back(id);
      s.positions.push_back(int32_t(pos));
      s.token_seq.push_back(int32_t(i));
      s.slots.push_back(cache_slot(seq.block_table, pos));
      if (cache_.has_window_pool()) s.window_slots.push_back(cache_slot(seq.window_block_table, pos));
      if (batch.all_logits) s.logit_rows.push_back(int32_t(s.ids.size() - 1));
      s.max_position = std::max(s.max_position, pos);
    }
    if (!batch.all_logits) s.logit_rows.push_back(int32_t(s.ids.size() - 1));
    append_table_row(s.block_tables, seq.block_table, s.max_blocks);
    if (cache_.has_window_pool()) append_table_row(s.window_tables, seq.window_block_table, s.max_blocks);
  }
  s.tiles = tiles.longest_first();
  s.tokens = int64_t(s.ids.size());
  s.one_token_per_sequence = std::all_of(batch.sequences.begin(), batch.sequences.end(),
                                         [](const SequenceChunk& seq) { return seq.tokens.size() == 1; });
  size_t at = 0;
  const auto place = [&](size_t& where, size_t bytes) { where = at; at = align8(at + bytes); };
  place(s.ids_at, s.ids.size() * 4);
  place(s.positions_at, s.positions.size() * 4);
  place(s.token_seq_at, s.token_seq.size() * 4);
  place(s.rows_at, s.logit_rows.size() * 4);
  place(s.tables_at, s.block_tables.size() * 4);
  place(s.slots_at, s.slots.size() * 8);
  place(s.tiles_at, s.tiles.size() * sizeof(QueryTile));
  place(s.window_tables_at, s.window_tables.size() * 4);
  place(s.window_slots_at, s.window_slots.size() * 8);
  s.bytes = at;
  return s;
}

void CudaBackend::upload(const Step& s) {
  if (meta_host_bytes_ < s.bytes) {
    if (meta_host_) FP4LLM_CUDA_CHECK(cudaFreeHost(meta_host_));
    meta_host_bytes_ = std::max<size_t>(s.bytes, 1 << 16);
    FP4LLM_CUDA_CHECK(cudaMallocHost(&meta_host_, meta_host_bytes_));
    meta_ = DeviceBuffer<uint8_t>(meta_host_bytes_);
    drop_graphs();
  }
  // The previous step's copy may still read the staging buffer.
  FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  const auto put = [&](size_t at, const void* src, size_t bytes) { if (bytes) std::memcpy(meta_host_ + at, src, bytes); };
  put(s.ids_at, s.ids.data(), s.ids.size() * 4);
  put(s.positions_at, s.positions.data(), s.positions.size() * 4);
  put(s.token_seq_at, s.token_seq.data(), s.token_seq.size() * 4);
  put(s.rows_at, s.logit_rows.data(), s.logit_rows.size() * 4);
  put(s.tables_at, s.block_tables.data(), s.block_tables.size() * 4);
  put(s.slots_at, s.slots.data(), s.slots.size() * 8);
  put(s.tiles_at, s.tiles.data(), s.tiles.size() * sizeof(QueryTile));
  put(s.window_tables_at, s.window_tables.data(), s.window_tables.size() * 4);
  put(s.window_slots_at, s.window_slots.data(), s.window_slots.size() * 8);
  FP4LLM_CUDA_CHECK(cudaMemcpyAsync(meta_.data(), meta_host_, s.bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::ensure_capacity(int64_t tokens, int64_t logit_rows) {
  const ModelConfig& c = model_.config;
  const size_t vocab = size_t(c.vocab_size);
  // Graphs hold buffer addresses: any reallocation retires them.
  if (logits_.size() < size_t(logit_rows) * vocab || argmax_.size() < size_t(logit_rows) || tokens > capacity_tokens_)
    drop_graphs();
  logits_.ensure(size_t(logit_rows) * vocab);
  if (comm_.active()) {
    lm_local_.ensure(size_t(logit_rows) * vocab / size_t(comm_.size));
    lm_gathered_.ensure(size_t(logit_rows) * vocab);
  }
  rows_.ensure(size_t(logit_rows * c.hidden_size));
  argmax_.ensure(size_t(logit_rows));
  linear_ws_.dequantized.ensure(size_t(step_scratch_elements(model_, tokens, logit_rows)));
  if (tokens <= capacity_tokens_) return;
  const size_t T = size_t(tokens), H = size_t(c.hidden_size), D = size_t(c.head_dim);
  // Dense MLP buffers only when some layer has a dense MLP (not in an all-MoE model).
  const size_t qd = size_t(c.num_heads) * D, kvd = size_t(c.num_kv_heads) * D;
  const size_t I = c.has_dense_mlp() ? size_t(c.intermediate_size) : 0;
  x_ = DeviceBuffer<float>(T * H);
  // The second stream buffer of the steps that take norms in the products, for Gemma3's sandwich
  // norms and MoE layers' experts, whose rows the next product adds to the stream.
  if ((c.family == ModelFamily::Gemma3 || c.num_experts > 0) && norm_prologue(c).qkv && !comm_.active())
    x_alt_ = DeviceBuffer<float>(size_t(std::min<int64_t>(tokens, kMaxNormedRows)) * H);
  if (norm_deferred_requested() && c.family != ModelFamily::Gemma3)
    norm_sums_ = DeviceBuffer<float>(size_t(std::min<int64_t>(tokens, kMaxDeferredNormRows) * deferred_norm_parts(c.hidden_size)));
  qkv_ = DeviceBuffer<float>(T * (qd + 2 * kvd));
  q_ = DeviceBuffer<float>(T * qd);
  o_ = DeviceBuffer<float>(T * H);
  gate_up_ = DeviceBuffer<float>(T * 2 * I);
  h_ = DeviceBuffer<__nv_bfloat16>(T * H);
  attn_ = DeviceBuffer<__nv_bfloat16>(T * qd);
  act_ = DeviceBuffer<__nv_bfloat16>(T * I);
  if (c.num_experts > 0) moe_ws_.ensure(tokens, router_shape(c), c.moe_intermediate_size);
  capacity_tokens_ = tokens;
}

AttentionParams CudaBackend::attention_params(int64_t layer, const Step& s) const {
  const ModelConfig& c = model_.config;
  const DeviceLayer& L = model_.layers[size_t(layer)];
  AttentionParams p;
  p.heads = c.num_heads;
  p.kv_heads = c.num_kv_heads;
  p.head_dim = c.head_dim;
  p.window = c.layer_sliding[size_t(layer)] ? c.sliding_window : 0;
  p.scale = float(c.attention_scale);
  p.fp8 = cache_.dtype == KvCacheDtype::Fp8E4M3;
  p.head_major_cache = kv_cache_head_major();
  p.k_scale = p.fp8 ? L.kv_scales.k : 1.0f;
  p.v_scale = p.fp8 ? L.kv_scales.v : 1.0f;
  p.max_blocks = std::max<int64_t>(s.max_blocks, 1);
  // Split-KV when the (token, kv head) blocks alone would leave most SMs idle.
  if (s.tokens <= kMaxDecodeRows) {
    p.splits = attention_splits(s.tokens, p.kv_heads, num_sms_);
    p.min_split_keys = min_split_keys();
    p.split_merge = split_merge();
    p.cache_blocks_before_wait = attention_early_blocks() && s.one_token_per_sequence;
  }
  return p;
}

// Tensor parallelism sums the products first: it keeps the norm kernel.
NormsInProducts CudaBackend::norms_in_products(int64_t tokens) const {
  const ModelConfig& c = model_.config;
  if (comm_.active() || !normed_input_supported(tokens, c.hidden_size) ||
      (c.num_experts > 0 && tokens > kMaxNormedRouterTokens))
    return {};
  return norm_prologue(c);
}

// Qwen3 dense models only (Gemma3's sandwich norms and the MoE layers' experts keep theirs), on one
// GPU (tensor parallelism sums the products first), where the norms are not in the products.
bool CudaBackend::norm_deferred(int64_t tokens) const {
  const ModelConfig& c = model_.config;
  if (!norm_deferred_requested() || c.family != ModelFamily::Qwen3 || c.num_experts > 0 || comm_.active() ||
      !deferred_norm_supported(tokens))
    return false;
  const NormsInProducts in = norms_in_products(tokens);
  return !in.ffn && !in.qkv;
}

// Qwen3-MoE's steps of one token: the experts' down projection adds their weighted sum to the
// stream itself and leaves the next qkv the deferred norm (nvfp4_experts_down_combined.cuh), instead
// of the qkv combining the experts' rows and normalising them in every block.
bool CudaBackend::moe_norm_deferred(int64_t tokens) const {
  const ModelConfig& c = model_.config;
  return norm_deferred_requested() && c.family == ModelFamily::Qwen3Moe && !comm_.active() && tokens == 1 &&
         c.experts_per_token <= kMaxCombinedExperts && norms_in_products(tokens).ffn;
}

DeferredNorm CudaBackend::deferred_norm() {
  const ModelConfig& c = model_.config;
  return {norm_sums_.data(), deferred_norm_parts(c.hidden_size), float(c.rms_norm_eps)};
}

void CudaBackend::layer(int64_t index, const Step& s) {
  const ModelConfig& c = model_.config;
  const DeviceLayer& L = model_.layers[size_t(index)];
  const bool gemma = c.family == ModelFamily::Gemma3;
  const int64_t T = s.tokens;
  const int32_t* positions = offset_ptr<int32_t>(meta_.data(), s.positions_at);

  RopeCacheParams rp;
  rp.heads = c.num_heads;
  rp.kv_heads = c.num_kv_heads;
  rp.head_dim = c.head_dim;
  rp.eps = float(c.rms_norm_eps);
  rp.one_plus = gemma;
  rp.fp8 = cache_.dtype == KvCacheDtype::Fp8E4M3;
  rp.head_major_cache = kv_cache_head_major();
  rp.k_scale = L.kv_scales.k;
  rp.v_scale = L.kv_scales.v;
  const float* inv_freq = c.layer_sliding[size_t(index)] ? inv_freq_sliding_.data() : inv_freq_full_.data();
  const bool window_pool = windowed(index);
  const RopeCacheIo io{positions, offset_ptr<int64_t>(meta_.data(), window_pool ? s.window_slots_at : s.slots_at),
                       L.q_norm.data(), L.k_norm.data(),
                       inv_freq, q_.data(), k_cache_[size_t(index)].data(), v_cache_[size_t(index)].data()};
  // With norms in the products (norm_in.ffn: gate_up or the router; norm_in.qkv: the next qkv),
  // the product before each such one (o_proj; down_proj or MoE experts but the last layer's)
  // leaves h_ stale and the product normalises the residual stream itself (layer 0's qkv reads the
  // embedding's norm; a qkv after a dense layer of an MoE model, the norm kernel's).
  // Gemma3's sandwich norms: o_proj and down_proj store their product, and the next product adds
  // it, normalised, to the residual stream itself, storing the updated stream in the other of two
  // buffers (its own blocks still read the first).
  // MoE layers (but the last) leave the combine of their experts' rows to the next qkv, which adds
  // them to the stream and stores it in the other buffer the same way.
  const NormsInProducts norm_in = norms_in_products(T);
  const bool qkv_norm_in = norm_in.qkv && index > 0 && (c.num_experts == 0 || experts_pending_);
  const float eps = float(c.rms_norm_eps);
  const auto normed_input = [&](const float* weight, const float* delta_w) {
    NormedInput in{residual_, weight, eps, gemma};
    if (gemma && experts_pending_) fail("CUDA backend: sandwich norms and MoE experts both pending for one product");
    if (gemma || experts_pending_) {
      float* other = residual_ == x_.data() ? x_alt_.data() : x_.data();
      in.store = other;
      residual_ = other;
    }
    if (gemma) {
      in.delta = o_.data(), in.delta_w = delta_w;
    } else if (experts_pending_) {
      in.delta = moe_ws_.expert_out.data(), in.delta_weights = moe_ws_.topk_weight.data();
      in.delta_count = c.experts_per_token;
      experts_pending_ = false;
    }
    return in;
  };
  const auto omitted = [&](OmittedStage stage) { return omitted_ == stage; };
  const bool deferred = norm_deferred(T);
  const bool qkv_deferred = std::exchange(norm_deferred_pending_, false);  // h_: the last down_proj's
  {
    const EarlyLaunchScope early(early_launch_role("qkv"));  // FP4LLM_PDL_ROLES: a scope per part
    static const bool qkv_own_ahead = l2_ahead_requested("qkv_own");
    const OwnWeightsToL2Scope ahead(qkv_own_ahead);  // the plain qkv (after a norm kernel) asks for its own
    if (omitted(OmittedStage::qkv))
      ;
    else if (qkv_deferred)
      nvfp4_linear_deferred_norm(L.qkv, h_.data(), T, qkv_.data(), deferred_norm(), stream_);
    else if (qkv_norm_in)
      nvfp4_linear_normed(L.qkv, normed_input(L.input_norm.data(), model_.layers[size_t(index - 1)].post_feedforward_norm.data()), T,
                          qkv_.data(), stream_);
    else
      nvfp4_linear(L.qkv, h_.data(), T, qkv_.data(), linear_ws_, stream_);
  }
  profiler_.mark("qkv_proj", stream_);
  const int32_t* token_seq = offset_ptr<int32_t>(meta_.data(), s.token_seq_at);
  const int32_t* tables = offset_ptr<int32_t>(meta_.data(), window_pool ? s.window_tables_at : s.tables_at);
  const AttentionParams ap = attention_params(index, s);
  const AttentionWorkspace aws{attn_partial_out_.data(), attn_partial_ml_.data(), attn_counters_.data()};
  const bool mma = use_mma_attention() && mma_decode_attention_supports(ap);
  const bool rope_in_attention = rope_in_attention_requested() && s.one_token_per_sequence && T <= kMaxDecodeRows &&
                                 (mma || paged_attention_takes_rope(ap));
  const bool flash_rope = T > kMaxDecodeRows && flash_rope_requested() && flash_prefill_takes_rope(ap);
  if (!rope_in_attention && !omitted(OmittedStage::attention) && !omitted(OmittedStage::rope)) {
    const EarlyLaunchScope rope_early(early_launch_role("rope"));
    RopeCacheIo keys_io = io;
    if (flash_rope) keys_io.q = nullptr;  // the keys and values only
    rope_and_cache(qkv_.data(), T, rp, keys_io, stream_);
    profiler_.mark("rope_kv_write", stream_);
  }
  if (omitted(OmittedStage::attention) || omitted(OmittedStage::attention_only))
    ;
  else if (flash_rope)
    flash_prefill_attention_with_rope(qkv_.data(), rp, io, token_seq, tables, offset_ptr<QueryTile>(meta_.data(), s.tiles_at),
                                      int64_t(s.tiles.size()), ap, attn_.data(), stream_);
  else if (T > kMaxDecodeRows)  // prefill-sized steps: tensor cores
    flash_prefill_attention(q_.data(), k_cache_[size_t(index)].data(), v_cache_[size_t(index)].data(), positions,
                            token_seq, tables, offset_ptr<QueryTile>(meta_.data(), s.tiles_at), int64_t(s.tiles.size()),
                            ap, attn_.data(), stream_);
  else if (rope_in_attention && mma)
    mma_decode_attention_with_rope(qkv_.data(), rp, io, token_seq, tables, T, ap, aws, attn_.data(), stream_);
  else if (rope_in_attention)
    paged_attention_with_rope(qkv_.data(), rp, io, token_seq, tables, T, ap, aws, attn_.data(), stream_);
  else if (mma)
    mma_decode_attention(q_.data(), k_cache_[size_t(index)].data(), v_cache_[size_t(index)].data(), positions,
                         token_seq, tables, T, ap, aws, attn_.data(), stream_);
  else
    paged_attention(q_.data(), k_cache_[size_t(index)].data(), v_cache_[size_t(index)].data(), positions, token_seq,
                    tables, T, ap, aws, attn_.data(), stream_);
  profiler_.mark("attention", stream_);
  // Qwen3 adds each projection straight into the residual stream (the GEMV's epilogue); Gemma3
  // normalises the projection first (sandwich norms); either way nvfp4_linear_residual then takes
  // the next norm (or, with norms in the products, the next product does).
  // Tensor parallelism: o_proj and down_proj hold a slice of their input features on each rank,
  // so their products are summed over the ranks before the residual add.
  const NormParams norm{c.hidden_size, float(c.rms_norm_eps), gemma};
  // o_ holds this rank's share of a product: summed over the ranks, then added (Gemma3: normalised
  // by post_w first) and the next norm taken.
  const auto add_shares = [&](const float* post_w, const float* next_w) {
    if (comm_.active()) {
      all_reduce_sum(o_.data(), size_t(T * c.hidden_size), comm_, stream_);
      profiler_.mark("all_reduce", stream_);
    }
    add_and_norm(residual_, o_.data(), gemma ? post_w : nullptr, next_w, T, norm, h_.data(), stream_);
  };
  // next_reads: the next product reads the norm's output (FP4LLM_WGMMA_PIPELINE=layout-written
  // then has the norm also write it laid out for that product).
  const auto residual = [&](const DeviceNvfp4Linear& w, const __nv_bfloat16* in, const float* post_w, const float* next_w,
                            bool next_reads) {
    if (comm_.active()) {
      nvfp4_linear(w, in, T, o_.data(), linear_ws_, stream_);
      profiler_.mark("row_parallel_proj", stream_);
      add_shares(post_w, next_w);
    } else {
      nvfp4_linear_residual(w, in, T, o_.data(),
                            {residual_, gemma ? post_w : nullptr, next_w, norm.eps, gemma, h_.data(), next_reads},
                            linear_ws_, stream_);
    }
  };
  // With norms in the products: a product the next one takes up. Qwen3 adds it into the stream;
  // Gemma3 stores it, for the next product to add under its sandwich norm.
  const auto hand_on = [&](const DeviceNvfp4Linear& w, const __nv_bfloat16* in) {
    if (gemma) nvfp4_linear(w, in, T, o_.data(), linear_ws_, stream_);
    else nvfp4_linear(w, in, T, residual_, linear_ws_, stream_, LinearOutput::Add);
  };
  const bool last = index + 1 == c.num_layers;
  // FP4LLM_NORM_DEFERRED=router: o_proj leaves the MoE layer's input norm to the router and experts.
  const bool moe_input_deferred = L.moe && !last && moe_norm_deferred(T) && router_norm_deferred_requested();
  {
    const EarlyLaunchScope early(early_launch_role("o_proj"));
    static const bool o_proj_ahead = l2_ahead_requested("o_proj");
    const OwnWeightsToL2Scope ahead(o_proj_ahead);
    if (omitted(OmittedStage::o_proj))
      ;
    else if (deferred || moe_input_deferred)  // (deferred: the norms are not in the products)
      nvfp4_linear_add_deferred_norm(L.o, attn_.data(), T, residual_, L.post_attention_norm.data(), deferred_norm(),
                                     h_.data(), stream_);
    else if (norm_in.ffn)
      hand_on(L.o, attn_.data());
    else
      residual(L.o, attn_.data(), L.post_attention_norm.data(),
               gemma ? L.pre_feedforward_norm.data() : L.post_attention_norm.data(), !L.moe);
  }
  profiler_.mark(!norm_in.ffn ? "o_proj_residual_norm" : gemma ? "o_proj" : "o_proj_residual", stream_);
  const float* next = last ? model_.final_norm.data() : model_.layers[size_t(index + 1)].input_norm.data();
  if (L.moe && omitted(OmittedStage::ffn_in)) return;  // the whole MoE block
  const EarlyLaunchScope ffn_early(early_launch_role(L.moe ? "moe" : "mlp"));  // to the end of the layer
  if (L.moe && comm_.active()) {  // each GPU's share (its columns of every expert, or its experts), summed
    moe_mlp_partial(*L.moe, h_.data(), T, o_.data(), moe_ws_, stream_);
    profiler_.mark("moe_experts", stream_);
    add_shares(nullptr, next);
    profiler_.mark("residual_norm", stream_);
    return;
  }
  if (L.moe && moe_norm_deferred(T) && !last) {  // the down projection adds the experts' rows, the next qkv scales
    static const bool qkv_ahead = l2_ahead_requested("qkv");
    const DeferredNorm sums = deferred_norm();  // o_proj's for the router and gate/up, then the down projection's
    moe_experts_deferred_norm(*L.moe, h_.data(), residual_, norm, L.post_attention_norm.data(), next, sums, moe_ws_,
                              stream_, qkv_ahead ? &model_.layers[size_t(index + 1)].qkv : nullptr,
                              moe_input_deferred ? &sums : nullptr);
    norm_deferred_pending_ = true;
    profiler_.mark("moe_experts_residual", stream_);
    return;
  }
  if (L.moe && norm_in.ffn && norm_in.qkv && !last) {  // the next qkv adds the experts' rows and takes the norm
    static const bool qkv_ahead = l2_ahead_requested("qkv");
    moe_experts_for_next_product(*L.moe, h_.data(), T, residual_, norm, L.post_attention_norm.data(), moe_ws_, stream_,
                                 qkv_ahead ? &model_.layers[size_t(index + 1)].qkv : nullptr);
    experts_pending_ = true;
    profiler_.mark("moe_experts", stream_);
    return;
  }
  if (L.moe) {  // Qwen3-MoE: the experts' weighted sum goes into the residual stream, then the next norm
    moe_mlp(*L.moe, h_.data(), T, residual_, next, norm, moe_ws_, stream_, norm_in.ffn ? L.post_attention_norm.data() : nullptr);
    profiler_.mark("moe_experts_residual_norm", stream_);
    return;
  }
  if (omitted(OmittedStage::ffn_in))
    ;
  else if (norm_in.ffn)
    nvfp4_gated_normed(L.gate_up, normed_input(gemma ? L.pre_feedforward_norm.data() : L.post_attention_norm.data(),
                                               L.post_attention_norm.data()),
                       T, gemma, act_.data(), stream_);
  else if (deferred)
    nvfp4_gated_deferred_norm(L.gate_up, h_.data(), T, false, act_.data(), deferred_norm(), stream_);
  else
    nvfp4_gated(L.gate_up, h_.data(), T, gemma, act_.data(), gate_up_.data(), linear_ws_, stream_);
  profiler_.mark("gate_up_activation", stream_);
  const bool next_qkv_norm_in = norm_in.qkv && !last && c.num_experts == 0;
  if (omitted(OmittedStage::down))
    ;
  else if (next_qkv_norm_in)
    hand_on(L.down, act_.data());
  else if (deferred && !last) {  // the last layer's final norm stays a kernel: cuBLAS's lm_head reads h_
    nvfp4_linear_add_deferred_norm(L.down, act_.data(), T, residual_, next, deferred_norm(), h_.data(), stream_);
    norm_deferred_pending_ = true;
  } else
    residual(L.down, act_.data(), gemma ? L.post_feedforward_norm.data() : nullptr, next, !last);
  profiler_.mark(!next_qkv_norm_in ? "down_proj_residual_norm" : gemma ? "down_proj" : "down_proj_residual", stream_);
}

void CudaBackend::launch_step(const Step& s) {
  const ModelConfig& c = model_.config;
  const int64_t rows = int64_t(s.logit_rows.size());
  // Gemma3 scales embeddings by sqrt(hidden) rounded to bf16, as its bf16 checkpoints do.
  profiler_.begin(stream_);
  residual_ = x_.data();
  experts_pending_ = false;
  linear_ws_.next_input = {};  // no laid-out input survives from the step before
  norm_deferred_pending_ = false;
  const float embed_scale = c.family == ModelFamily::Gemma3 ? bf16_to_float(float_to_bf16(std::sqrt(float(c.hidden_size)))) : 1.0f;
  embed_tokens(model_.embedding_table(), offset_ptr<int32_t>(meta_.data(), s.ids_at), s.tokens, c.hidden_size, embed_scale,
               x_.data(), stream_);
  const NormParams norm{c.hidden_size, float(c.rms_norm_eps), c.family == ModelFamily::Gemma3};
  add_and_norm(x_.data(), nullptr, nullptr, model_.layers[0].input_norm.data(), s.tokens, norm, h_.data(), stream_);
  profiler_.mark("embed", stream_);
  for (int64_t l = 0; l < c.num_layers; ++l) layer(l, s);

  gather_rows(h_.data(), offset_ptr<int32_t>(meta_.data(), s.rows_at), rows, c.hidden_size, rows_.data(), stream_);
  // Tensor parallelism: this rank's vocabulary slice, then every rank's slice side by side.
  const int64_t vocab_rows = c.vocab_size / comm_.size;
  float* logits = comm_.active() ? lm_local_.data() : logits_.data();
  const EarlyLaunchScope early(early_launch_role("lm_head"));
  if (omitted_ == OmittedStage::lm_head)
    ;
  else if (model_.lm_head_nvfp4)
    nvfp4_linear(*model_.lm_head_nvfp4, rows_.data(), rows, logits, linear_ws_, stream_);
  else
    bf16_linear(model_.lm_head_bf16(), vocab_rows, c.hidden_size, rows_.data(), rows, logits, linear_ws_, stream_);
  if (comm_.active()) {
    all_gather(lm_local_.data(), lm_gathered_.data(), size_t(rows * vocab_rows), comm_, stream_);
    for (int r = 0; r < comm_.size; ++r)
      FP4LLM_CUDA_CHECK(cudaMemcpy2DAsync(logits_.data() + r * vocab_rows, size_t(c.vocab_size) * 4,
                                          lm_gathered_.data() + size_t(r * rows * vocab_rows), size_t(vocab_rows) * 4,
                                          size_t(vocab_rows) * 4, size_t(rows), cudaMemcpyDeviceToDevice, stream_));
  }
  if (c.final_logit_softcapping > 0)
    soft_cap(logits_.data(), rows * c.vocab_size, float(c.final_logit_softcapping), stream_);
  profiler_.mark("lm_head", stream_);
}

uint64_t CudaBackend::active_experts() {
  if (!moe_ws_.active_experts.size()) return 0;
  FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return moe_ws_.active_experts.to_host()[0];
}

void CudaBackend::drop_graphs() {
  for (auto& [_, g] : graphs_) cudaGraphExecDestroy(g);
  graphs_.clear();
}

int64_t CudaBackend::run(const ForwardBatch& batch) {
  const Step s = plan(batch);
  const int64_t rows = int64_t(s.logit_rows.size());
  ensure_capacity(s.tokens, rows);
  prepare_gemv_scratch(linear_ws_);  // before any capture below
  upload(s);
  // Decode steps (one token per sequence, the shape that repeats) replay a captured graph.
  const bool decode = s.one_token_per_sequence && s.tokens <= kMaxDecodeRows;
  if (enforce_eager_ || profiler_.enabled() || !decode) {
    launch_step(s);
    profiler_.end_step();
    return rows;
  }
  const auto key = std::make_pair(s.tokens, s.max_blocks);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    cudaGraph_t graph = nullptr;
    FP4LLM_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      launch_step(s);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    FP4LLM_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    FP4LLM_CUDA_CHECK(status);
    it = graphs_.emplace(key, exec).first;
  }
  FP4LLM_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
  return rows;
}

void CudaBackend::forward(const ForwardBatch& batch, std::vector<float>& logits) {
  const int64_t rows = run(batch);
  logits.resize(size_t(rows * model_.config.vocab_size));
  FP4LLM_CUDA_CHECK(cudaMemcpyAsync(logits.data(), logits_.data(), logits.size() * 4, cudaMemcpyDeviceToHost, stream_));
  FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::step(const ForwardBatch& batch) {
  run(batch);
  FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

std::vector<int32_t> CudaBackend::forward_greedy(const ForwardBatch& batch) {
  const int64_t rows = run(batch);
  argmax_rows(logits_.data(), rows, model_.config.vocab_size, argmax_.data(), stream_);
  std::vector<int32_t> ids(static_cast<size_t>(rows));
  FP4LLM_CUDA_CHECK(cudaMemcpyAsync(ids.data(), argmax_.data(), ids.size() * 4, cudaMemcpyDeviceToHost, stream_));
  FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return ids;
}

// Candidates kept per row on the GPU: a row with more (a flat distribution at a high temperature)
// comes to the host whole and is narrowed there.
constexpr int kNarrowCapacity = 2048;

void CudaBackend::forward_candidates(const ForwardBatch& batch, std::span<const float> temperatures,
                                     CandidateRows& out) {
  static const bool on_device = knob_int("FP4LLM_GPU_NARROWING", 0) == 1;
  if (!on_device) return Backend::forward_candidates(batch, temperatures, out);
  const int64_t rows = run(batch), vocab = model_.config.vocab_size;
  check_temperatures(temperatures.size(), size_t(rows));
  const size_t slots = size_t(rows) * kNarrowCapacity;
  narrow_temperatures_.ensure(size_t(rows));
  narrow_counts_.ensure(size_t(rows));
  narrow_ids_.ensure(slots);
  narrow_values_.ensure(slots);
  FP4LLM_CUDA_CHECK(cudaMemcpyAsync(narrow_temperatures_.data(), temperatures.data(), size_t(rows) * 4,
                                    cudaMemcpyHostToDevice, stream_));
  narrow_rows(logits_.data(), rows, vocab, narrow_temperatures_.data(), kNarrowCapacity, narrow_ids_.data(),
              narrow_values_.data(), narrow_counts_.data(), stream_);
  std::vector<int32_t> counts(static_cast<size_t>(rows)), ids(slots);
  std::vector<float> values(slots);
  FP4LLM_CUDA_CHECK(cudaMemcpyAsync(counts.data(), narrow_counts_.data(), counts.size() * 4, cudaMemcpyDeviceToHost, stream_));
  FP4LLM_CUDA_CHECK(cudaMemcpyAsync(ids.data(), narrow_ids_.data(), slots * 4, cudaMemcpyDeviceToHost, stream_));
  FP4LLM_CUDA_CHECK(cudaMemcpyAsync(values.data(), narrow_values_.data(), slots * 4, cudaMemcpyDeviceToHost, stream_));
  FP4LLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  out.clear();
  std::vector<float> whole;
  for (int64_t r = 0; r < rows; ++r) {
    const size_t n = size_t(counts[size_t(r)]), at = size_t(r) * kNarrowCapacity;
    if (n <= size_t(kNarrowCapacity)) {
      out.append(std::span(ids).subspan(at, n), std::span(values).subspan(at, n));
      continue;
    }
    whole.resize(size_t(vocab));
    FP4LLM_CUDA_CHECK(cudaMemcpy(whole.data(), logits_.data() + size_t(r * vocab), size_t(vocab) * 4, cudaMemcpyDeviceToHost));
    append_narrowed(whole, temperatures[size_t(r)], out);
  }
}

}  // namespace fp4llm::cuda
