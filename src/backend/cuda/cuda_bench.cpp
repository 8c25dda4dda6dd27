// The runner behind `fp4llm bench` (backend/benchmark.hpp): builds the model on the GPU, then
// times prefill and greedy decode steps through CudaBackend exactly as generation runs them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include <unistd.h>  // environ

#include <fmt/format.h>

#include "backend/backend_factory.hpp"
#include "backend/benchmark.hpp"
#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/bench_trace.hpp"
#include "backend/cuda/tensor_parallel_backend.hpp"
#include "io/checkpoint.hpp"
#include "model/tensor_parallel.hpp"
#include "util/error.hpp"
#include "util/json_file.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm {

namespace {

// The kernel knobs of this run (FP4LLM_* environment variables, docs/PERFORMANCE.md), so that a
// result file names the variant it measured. Variables that are neither a knob nor one of the
// tools' own go under "unknown", with a warning: no code reads them.
nlohmann::json knob_settings() {
  static constexpr std::string_view kNotKnobs[] = {
      "FP4LLM_SHARED_DIR", "FP4LLM_COMMIT",      "FP4LLM_PROGRESS",   "FP4LLM_BIN",         "FP4LLM_TOOLS_DIR",
      "FP4LLM_SANITIZE",   "FP4LLM_PROFILE",     "FP4LLM_HF_COMPARE", "FP4LLM_TEST_DEVICE", "FP4LLM_DEPS_ROOT",
      "FP4LLM_PYTHON",     "FP4LLM_REBUILD",     "FP4LLM_CMAKE_ARGS", "FP4LLM_CUDA_ARCH_FLAGS", "FP4LLM_EXCLUDE_DIRS"};
  nlohmann::json knobs = nlohmann::json::object();
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    const size_t eq = entry.find('=');
    if (entry.rfind("FP4LLM_", 0) != 0 || eq == std::string::npos) continue;
    const std::string name = entry.substr(0, eq);
    if (std::ranges::find(kNotKnobs, name) != std::end(kNotKnobs)) continue;
    if (std::ranges::find(kKernelKnobs, std::string_view(name)) != std::end(kKernelKnobs)) {
      const std::string value = entry.substr(eq + 1);
      if (!knob_value_known(name, value))
        fmt::print(stderr, "warning: {}={} is not a value the kernels know (docs/PERFORMANCE.md lists them)\n", name, value);
      knobs[name] = value;
      continue;
    }
    fmt::print(stderr, "warning: {} is set, but no kernel reads it (docs/PERFORMANCE.md lists the knobs)\n", name);
    knobs["unknown"][name] = entry.substr(eq + 1);
  }
  return knobs;
}

// FP4LLM_OMIT_STAGE=qkv|attention|rope|attention_only|o_proj|ffn_in|down|lm_head (cuda_backend.hpp, OmittedStage).
cuda::OmittedStage omitted_stage() {
  using cuda::OmittedStage;
  constexpr std::pair<const char*, OmittedStage> kStages[] = {
      {"qkv", OmittedStage::qkv},       {"attention", OmittedStage::attention}, {"o_proj", OmittedStage::o_proj},
      {"rope", OmittedStage::rope},     {"attention_only", OmittedStage::attention_only},
      {"ffn_in", OmittedStage::ffn_in}, {"down", OmittedStage::down},           {"lm_head", OmittedStage::lm_head}};
  for (const auto& [name, stage] : kStages)
    if (knob_is("FP4LLM_OMIT_STAGE", name)) return stage;
  return OmittedStage::none;
}

using Clock = std::chrono::steady_clock;

// config.json of the published models (text part), for shapes only.
const std::map<std::string, nlohmann::json>& synthetic_configs() {
  static const std::map<std::string, nlohmann::json> configs = [] {
    const auto qwen3 = [](int64_t h, int64_t inter, int64_t layers, int64_t heads, bool tie) {
      return nlohmann::json{{"architectures", {"Qwen3ForCausalLM"}}, {"hidden_size", h}, {"intermediate_size", inter},
                            {"num_hidden_layers", layers}, {"num_attention_heads", heads}, {"num_key_value_heads", 8},
                            {"head_dim", 128}, {"vocab_size", 151936}, {"max_position_embeddings", 40960},
                            {"rope_theta", 1000000}, {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", tie}};
    };
    const auto gemma3 = [](int64_t h, int64_t inter, int64_t layers, int64_t heads, int64_t kv, int64_t d,
                           int64_t window, double qpas, int64_t vocab) {
      return nlohmann::json{{"architectures", {"Gemma3ForCausalLM"}}, {"hidden_size", h}, {"intermediate_size", inter},
                            {"num_hidden_layers", layers}, {"num_attention_heads", heads}, {"num_key_value_heads", kv},
                            {"head_dim", d}, {"vocab_size", vocab}, {"max_position_embeddings", 131072},
                            {"sliding_window", window}, {"query_pre_attn_scalar", qpas}, {"rope_theta", 1000000},
                            {"rope_local_base_freq", 10000}, {"rms_norm_eps", 1e-6},
                            {"hidden_activation", "gelu_pytorch_tanh"}, {"tie_word_embeddings", true}};
    };
    const auto qwen3_moe = [](int64_t h, int64_t moe_inter, int64_t layers, int64_t heads, int64_t kv, int64_t experts,
                              int64_t top_k) {
      return nlohmann::json{{"architectures", {"Qwen3MoeForCausalLM"}}, {"hidden_size", h}, {"intermediate_size", 6144},
                            {"moe_intermediate_size", moe_inter}, {"num_experts", experts},
                            {"num_experts_per_tok", top_k}, {"norm_topk_prob", true}, {"decoder_sparse_step", 1},
                            {"mlp_only_layers", nlohmann::json::array()}, {"num_hidden_layers", layers},
                            {"num_attention_heads", heads}, {"num_key_value_heads", kv}, {"head_dim", 128},
                            {"vocab_size", 151936}, {"max_position_embeddings", 40960}, {"rope_theta", 1000000},
                            {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", false}};
    };
    return std::map<std::string, nlohmann::json>{
        {"qwen3-30b-a3b", qwen3_moe(2048, 768, 48, 32, 4, 128, 8)},
        {"qwen3-0.6b", qwen3(1024, 3072, 28, 16, true)},
        {"qwen3-4b", qwen3(2560, 9728, 36, 32, true)},
        {"qwen3-8b", qwen3(4096, 12288, 36, 32, false)},
        {"qwen3-14b", qwen3(5120, 17408, 40, 40, false)},
        {"gemma3-270m", gemma3(640, 2048, 18, 4, 1, 256, 512, 256, 262144)},
        {"gemma3-1b", gemma3(1152, 6912, 26, 4, 1, 256, 512, 256, 262144)},
        {"gemma3-12b", gemma3(3840, 15360, 48, 16, 8, 256, 1024, 256, 262208)},
        {"gemma3-27b", gemma3(5376, 21504, 62, 32, 16, 128, 1024, 168, 262208)},
    };
  }();
  return configs;
}

// Device-to-device copy of 1 GiB: bytes read + bytes written per second.
double copy_bandwidth() {
  const size_t bytes = size_t(1) << 30;
  cuda::DeviceBuffer<uint8_t> a(bytes), b(bytes);
  FP4LLM_CUDA_CHECK(cudaMemset(a.data(), 1, bytes));
  FP4LLM_CUDA_CHECK(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  const int reps = 20;
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) FP4LLM_CUDA_CHECK(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  return 2.0 * double(bytes) * reps / std::chrono::duration<double>(Clock::now() - start).count();
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Multiply-adds of the projections per token (lm_head counted separately: one row per sequence);
// MoE layers count the experts a token is routed to.
double linear_macs_per_token(const ModelConfig& c) {
  const double H = double(c.hidden_size), D = double(c.head_dim);
  const double attn = H * (c.num_heads + 2 * c.num_kv_heads) * D + c.num_heads * D * H;
  double macs = 0;
  for (int64_t l = 0; l < c.num_layers; ++l)
    macs += attn + (c.layer_moe[size_t(l)] ? 3 * H * double(c.moe_intermediate_size) * double(c.experts_per_token) +
                                                 H * double(c.num_experts)
                                           : 3 * H * double(c.intermediate_size));
  return macs;
}

struct Sequences {
  std::vector<std::vector<int32_t>> tokens, tables, windows;  // windows: rings in the window pool
};

// Window-pool blocks one sequence of `blocks` blocks needs when fed `per_step` tokens at a time:
// its ring (see SequenceChunk::window_block_table); 0 without a window pool.
int64_t ring_blocks(const KvCacheConfig& cache, const ModelConfig& c, int64_t blocks, int64_t per_step) {
  return cache.has_window_pool() ? window_ring_blocks(c.sliding_window, per_step, blocks) : 0;
}

Sequences make_sequences(int64_t count, int64_t length, int64_t blocks_each, int64_t ring_each, int64_t vocab,
                         uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, int32_t(vocab - 1));
  Sequences s;
  for (int64_t i = 0; i < count; ++i) {
    s.tokens.emplace_back(static_cast<size_t>(length));
    for (auto& t : s.tokens.back()) t = id(rng);
    s.tables.emplace_back(static_cast<size_t>(blocks_each));
    for (int64_t b = 0; b < blocks_each; ++b) s.tables.back()[size_t(b)] = int32_t(i * blocks_each + b);
    s.windows.emplace_back(size_t(ring_each > 0 ? blocks_each : 0));
    for (int64_t b = 0; b < int64_t(s.windows.back().size()); ++b)
      s.windows.back()[size_t(b)] = int32_t(i * ring_each + b % ring_each);
  }
  return s;
}

int64_t prefill_step_tokens(int64_t length, int64_t batch, int64_t max_tokens) {
  return max_tokens > 0 ? std::max<int64_t>(1, max_tokens / batch) : length;
}

// The prompts of `batch` sequences, each step taking the next max_tokens / batch tokens of every
// sequence (vLLM's chunked prefill, simplified); returns the greedy tokens after the prompts.
std::vector<int32_t> prefill(Backend& backend, const Sequences& seqs, int64_t batch, int64_t max_tokens) {
  const int64_t length = int64_t(seqs.tokens[0].size());
  const int64_t per_step = prefill_step_tokens(length, batch, max_tokens);
  std::vector<int32_t> next;
  for (int64_t start = 0; start < length; start += per_step) {
    ForwardBatch chunk;
    for (int64_t i = 0; i < batch; ++i)
      chunk.sequences.push_back({std::span(seqs.tokens[size_t(i)]).subspan(size_t(start), size_t(std::min(per_step, length - start))),
                                 start, seqs.tables[size_t(i)], seqs.windows[size_t(i)]});
    next = backend.forward_greedy(chunk);
  }
  return next;
}

// The model runs on `stepper` (one GPU, or all ranks of a tensor-parallel group); `first` is the
// GPU whose counters, profile and bytes are reported (rank 0: every rank holds an equal share).
struct BenchTarget {
  Backend& stepper;
  cuda::CudaBackend& first;
  std::function<void(bool)> set_profiling;  // on every rank, so they launch the same way
};

// --trace: this many decode steps per batch size, rewriting the last positions.
constexpr int64_t kTracedSteps = 3;

nlohmann::json bench_batch(const BenchTarget& target, int64_t batch, const BenchOptions& o, double bandwidth) {
  Backend& backend = target.stepper;
  cuda::CudaBackend& first = target.first;
  const ModelConfig& c = backend.config();
  const int64_t blocks_each = (o.input_len + o.output_len + 15) / 16;
  const int64_t ring = ring_blocks(first.cache(), c, blocks_each,
                                   prefill_step_tokens(o.input_len, batch, o.max_num_batched_tokens));
  Sequences seqs = make_sequences(batch, o.input_len, blocks_each, ring, c.vocab_size, uint32_t(batch));
  prefill(backend, seqs, batch, o.max_num_batched_tokens);  // warm-up (first use of cuBLAS, buffers grown)
  const auto t0 = Clock::now();
  std::vector<int32_t> next = prefill(backend, seqs, batch, o.max_num_batched_tokens);
  const double prefill_s = seconds_since(t0);

  const int64_t warmup = std::min<int64_t>(3, o.output_len - 1), steps = o.output_len - 1;
  // One greedy decode step of every sequence at `position`, feeding back the previous tokens.
  std::vector<std::array<int32_t, 1>> step_tokens(static_cast<size_t>(batch));
  const auto decode_at = [&](int64_t position) {
    ForwardBatch decode;
    for (int64_t i = 0; i < batch; ++i) {
      step_tokens[size_t(i)][0] = next[size_t(i)];
      decode.sequences.push_back({step_tokens[size_t(i)], position, seqs.tables[size_t(i)], seqs.windows[size_t(i)]});
    }
    next = backend.forward_greedy(decode);
  };
  Clock::time_point start;
  uint64_t experts_before = 0;
  for (int64_t step = 0; step < steps; ++step) {
    if (step == warmup) experts_before = first.active_experts(), start = Clock::now();
    decode_at(o.input_len + step);
  }
  const double decode_s = seconds_since(start), timed = double(steps - warmup);
  // MoE: a step reads only the experts its tokens chose (counted on the GPU while timing).
  const double experts_per_step = double(first.active_experts() - experts_before) / timed;
  nlohmann::json stages;
  if (o.profile) {  // a few extra eager steps (rewriting the last positions), timed stage by stage
    target.set_profiling(true);
    first.profiler().take_averages();
    for (int64_t step = 0; step < 5; ++step) decode_at(o.input_len + steps - 5 + step);
    for (const auto& [stage, us] : first.profiler().take_averages()) stages[stage] = us;
    target.set_profiling(false);
  }
  nlohmann::json timeline;
  if (!o.trace_path.empty()) {  // a few more steps, rewriting the last positions
    const int64_t from = o.input_len + steps - kTracedSteps;
    timeline = cuda::trace_run([&] { for (int64_t step = 0; step < kTracedSteps; ++step) decode_at(from + step); }, kTracedSteps,
                         batch, o.trace_path);
  }
  const double step_ms = decode_s * 1e3 / timed;
  // Bytes a step must read: every weight once (of MoE layers, the chosen experts), plus the KV
  // cache of each sequence.
  const cuda::DeviceModel& m = first.model();
  const double weights = double(m.bytes_per_step() - m.expert_bytes()) + experts_per_step * double(m.bytes_per_expert());
  // (Sliding-window layers read only their window.)
  const double avg_context = double(o.input_len) + double(warmup + steps) / 2.0;
  const double kv = double(batch) * double(m.config.kv_cache_bytes(int64_t(avg_context))) * (o.fp8_kv ? 1.0 : 2.0);
  const double floor_ms = (weights + kv) / bandwidth * 1e3;
  return {{"batch", batch},
          {"decode_tokens_per_s", double(batch) * 1e3 / step_ms},
          {"decode_ms_per_step", step_ms},
          {"bytes_per_step", weights + kv},
          {"weight_bytes_per_step", weights},
          {"distinct_experts_per_step", experts_per_step},
          {"floor_ms_per_step", floor_ms},
          {"fraction_of_bandwidth_floor", floor_ms / step_ms},
          {"prefill_ms", prefill_s * 1e3},
          {"profile_us_per_step", stages},
          {"timeline", timeline},
          {"time_to_first_token_ms", prefill_s * 1e3}};
}

nlohmann::json bench_prefill(const BenchTarget& target, const BenchOptions& o) {
  Backend& backend = target.stepper;
  const ModelConfig& c = backend.config();
  const int64_t n = o.prefill_len, blocks = (n + 15) / 16;
  const int64_t ring = ring_blocks(target.first.cache(), c, blocks, prefill_step_tokens(n, 1, o.max_num_batched_tokens));
  Sequences seqs = make_sequences(1, n, blocks, ring, c.vocab_size, 99);
  prefill(backend, seqs, 1, o.max_num_batched_tokens);
  const int reps = 3;
  const auto t0 = Clock::now();
  for (int r = 0; r < reps; ++r) prefill(backend, seqs, 1, o.max_num_batched_tokens);
  const double s = seconds_since(t0) / reps;
  const double linear_flops = 2.0 * linear_macs_per_token(c) * double(n) + 2.0 * double(c.vocab_size * c.hidden_size);
  // Causal attention: QK^T and PV over n(n+1)/2 pairs per head (full layers; windows fewer).
  double attn_flops = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const double w = c.layer_sliding[size_t(l)] ? double(std::min(n, c.sliding_window)) : double(n);
    attn_flops += 4.0 * double(c.num_heads * c.head_dim) * (double(n) * w - w * (w - 1) / 2.0);
  }
  nlohmann::json stages;
  if (o.profile) {  // one more prefill timed stage by stage: microseconds per prompt, all its steps
    const int64_t steps = o.max_num_batched_tokens > 0 ? (n + o.max_num_batched_tokens - 1) / o.max_num_batched_tokens : 1;
    target.set_profiling(true);
    target.first.profiler().take_averages();
    prefill(backend, seqs, 1, o.max_num_batched_tokens);
    for (const auto& [stage, us] : target.first.profiler().take_averages()) stages[stage] = us * double(steps);
    target.set_profiling(false);
  }
  nlohmann::json timeline;
  if (!o.trace_path.empty())  // one more prefill, kernel by kernel
    timeline = cuda::trace_run([&] { prefill(backend, seqs, 1, o.max_num_batched_tokens); }, 0, 0, o.trace_path);
  return {{"tokens", n},
          {"timeline", timeline},
          {"ms", s * 1e3},
          {"tokens_per_s", double(n) / s},
          {"linear_tflops", linear_flops / s / 1e12},
          {"tflops_with_attention", (linear_flops + attn_flops) / s / 1e12},
          {"profile_us", stages}};
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::vector<std::string> synthetic_model_names() {
  std::vector<std::string> names;
  for (const auto& [name, _] : synthetic_configs()) names.push_back(name);
  return names;
}

nlohmann::json run_benchmark(const BenchOptions& o) {
  if (const std::string why = cuda_unavailable_reason(); !why.empty()) fail("fp4llm bench needs the CUDA backend: {}", why);
  if (!o.trace_path.empty()) {  // before any graph is captured, so that the replays are traced
    if (o.enforce_eager) fail("--trace reduces replayed decode steps: leave out --enforce-eager");
    cuda::start_bench_trace(o.trace_path);
  }
  cudaDeviceProp prop{};
  FP4LLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  size_t free_before = 0, total = 0;
  FP4LLM_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));

  // The model, built on the GPU that asks (each rank's own thread under tensor parallelism).
  std::optional<Checkpoint> ck;
  std::optional<ModelWeights> weights;
  ModelConfig config;
  if (!o.synthetic.empty()) {
    const auto it = synthetic_configs().find(o.synthetic);
    if (it == synthetic_configs().end()) fail("--synthetic {}: unknown model (known: {})", o.synthetic, fmt::join(synthetic_model_names(), ", "));
    config = ModelConfig::from_json(it->second);
  } else {
    ck.emplace(load_checkpoint(o.model, LoadOptions{{}, o.progress}));
    weights.emplace(ModelWeights::bind(*ck));
    if (o.quantize_lm_head) weights->quantize_lm_head();
    config = weights->config;
  }
  const int64_t tp = o.tensor_parallel_size;
  const TensorParallelPlan plan = TensorParallelPlan::make(config, tp, o.expert_parallel);
  // A real model's offloaded table: one for every rank (a synthetic model's ranks make their own).
  const cuda::HostTable host_table = weights && o.offload_embeddings ? cuda::host_embedding_table(*weights) : nullptr;
  const auto make_model = [&](int64_t rank) -> cuda::DeviceModel {
    if (!o.synthetic.empty())
      return tp == 1 ? cuda::synthetic_model(config, 1, o.quantize_lm_head, {0, 0, 0, o.offload_embeddings})
                     : cuda::synthetic_model(rank_config(config, plan), uint64_t(1 + rank), o.quantize_lm_head,
                                             {plan.vocab_per_rank, plan.experts(rank).begin, plan.experts_per_rank,
                                              o.offload_embeddings});
    if (tp == 1) return cuda::upload_model(*weights, o.progress, host_table);
    const auto shard = shard_weights(*weights, plan, rank);
    return cuda::upload_model(shard->weights, o.progress && rank == 0, host_table);
  };
  const int64_t max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  KvCacheConfig cache;
  cache.dtype = o.fp8_kv ? KvCacheDtype::Fp8E4M3 : KvCacheDtype::Bf16;
  cache.num_blocks = std::max(max_batch * ((o.input_len + o.output_len + 15) / 16), (o.prefill_len + 15) / 16);
  if (o.window_pool && config.num_sliding_layers() > 0) {  // the most any bench_batch or bench_prefill uses
    cache.num_window_blocks = 1;
    for (int64_t b : o.batches) {
      const int64_t blocks = (o.input_len + o.output_len + 15) / 16;
      cache.num_window_blocks = std::max(cache.num_window_blocks,
          b * ring_blocks(cache, config, blocks, prefill_step_tokens(o.input_len, b, o.max_num_batched_tokens)));
    }
    if (o.prefill_len > 0)
      cache.num_window_blocks = std::max(cache.num_window_blocks,
          ring_blocks(cache, config, (o.prefill_len + 15) / 16, prefill_step_tokens(o.prefill_len, 1, o.max_num_batched_tokens)));
  }
  std::unique_ptr<cuda::CudaBackend> single;
  std::unique_ptr<cuda::TensorParallelBackend> group;
  if (tp == 1) single = std::make_unique<cuda::CudaBackend>(make_model(0), cache, o.enforce_eager);
  else group = std::make_unique<cuda::TensorParallelBackend>(config, plan, make_model, cache, o.enforce_eager);
  cuda::CudaBackend& backend = single ? *single : group->rank(0);
  const auto set_profiling = [&](bool on) {
    const auto apply = [on](cuda::CudaBackend& b) { on ? b.profiler().enable() : b.profiler().disable(); };
    if (single) apply(*single);
    else group->on_all_ranks([&](int64_t r) { apply(group->rank(r)); });
  };
  const BenchTarget target{single ? static_cast<Backend&>(*single) : *group, backend, set_profiling};
  if (const cuda::OmittedStage stage = omitted_stage(); stage != cuda::OmittedStage::none) {
    fmt::print(stderr, "warning: FP4LLM_OMIT_STAGE leaves a stage out of every step: its times are a diagnosis, its outputs wrong\n");
    if (single) single->omit_stage(stage);
    else group->on_all_ranks([&](int64_t r) { group->rank(r).omit_stage(stage); });
  }
  const double bandwidth = copy_bandwidth();
  // The allocator's peak from here on: the steps' own buffers, not the copy test's or the
  // synthetic weights' generation scratch, which a served model never holds.
  cuda::g_device_peak_bytes = cuda::g_device_bytes.load();

  nlohmann::json out;
  out["gpu"] = prop.name;
  out["lm_head"] = o.quantize_lm_head ? "nvfp4" : "bf16";
  out["embeddings"] = o.offload_embeddings ? "host" : "gpu";
  out["knobs"] = knob_settings();
#ifdef FP4LLM_E2M1_NIBBLES
  out["tile_code_layout"] = "nibbles";  // e2m1_pairs.hpp: a build for A/Bs
#else
  out["tile_code_layout"] = "spread";
#endif
  out["max_num_batched_tokens"] = o.max_num_batched_tokens;
  out["date"] = utc_now();
  out["model"] = o.synthetic.empty() ? o.model : "synthetic " + o.synthetic;
  out["kv_cache_dtype"] = o.fp8_kv ? "fp8" : "bf16";
  out["kv_window_pool_blocks"] = cache.num_window_blocks;
  out["cuda_graphs"] = !o.enforce_eager;
  out["traced"] = !o.trace_path.empty();  // every kernel recorded: the timings carry its cost
  out["input_len"] = o.input_len;
  out["output_len"] = o.output_len;
  out["copy_bandwidth_gb_per_s"] = bandwidth / 1e9;
  out["weight_bytes"] = backend.model().weight_bytes();
  out["tensor_parallel_size"] = tp;
  out["expert_parallel"] = o.expert_parallel;
  for (int64_t b : o.batches) out["decode"].push_back(bench_batch(target, b, o, bandwidth));
  if (o.prefill_len > 0) out["prefill"] = bench_prefill(target, o);
  size_t free_after = 0;
  FP4LLM_CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
  const cuda::GpuMemory mem = backend.memory();
  out["memory"] = {{"gpu_used_bytes", free_before - free_after},
                   {"allocator_peak_bytes", cuda::g_device_peak_bytes.load()},
                   {"weights_bytes", mem.weights},
                   {"kv_cache_bytes", mem.kv_cache},
                   {"workspace_bytes", mem.workspace}};
  return out;
}

}  // namespace fp4llm
