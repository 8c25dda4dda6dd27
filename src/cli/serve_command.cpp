// `fp4llm serve MODEL`: loads the model, sizes the paged KV cache, starts the serving engine and
// the OpenAI-compatible HTTP server (options named as in vLLM).
#include <algorithm>
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "cli/backend_flags.hpp"
#include "cli/commands.hpp"
#include "util/error.hpp"

#ifdef FP4LLM_HAVE_SERVER
#include <chrono>

#include "backend/backend_factory.hpp"
#include "engine/kv_cache_plan.hpp"
#include "engine/llm_engine.hpp"
#include "io/checkpoint.hpp"
#include "model/model_weights.hpp"
#include "server/http_server.hpp"
#include "server/serving_model.hpp"
#include "util/json_file.hpp"
#endif

namespace fp4llm::cli {

namespace {

struct ServeArgs {
  std::string model, tokenizer, served_model_name, api_key, host = "127.0.0.1", device = "cpu";
  BackendFlags backend;
  std::string kv_cache_memory;  // empty: 1GiB on the CPU, from --gpu-memory-utilization on the GPU
  int port = 8000, http_threads = 128;
  std::optional<int64_t> max_model_len;
  int64_t max_num_seqs = 64, max_num_batched_tokens = 2048, max_queued_requests = 256;
  double gpu_memory_utilization = 0.9;
  std::string max_request_body = "8MiB";
  bool prefix_caching = true, quiet = false;
  bool full_window_cache = false;  // --disable-hybrid-kv-cache-manager
};

#ifdef FP4LLM_HAVE_SERVER
namespace fs = std::filesystem;

fs::path tokenizer_dir(const ServeArgs& a) {
  if (!fs::exists(a.model)) fail("model path {} does not exist", a.model);
  if (!a.tokenizer.empty()) return a.tokenizer;
  if (fs::is_directory(a.model)) return a.model;
  fail("{} is a single file (GGUF); pass --tokenizer DIR with the model's tokenizer.json", a.model);
}

// vLLM's default (--generation-config auto): the model's generation_config.json sets the
// sampling defaults a request does not override.
SamplingParams sampling_defaults(const ServeArgs& a, const fs::path& tok_dir) {
  SamplingParams p;
  const fs::path gen = (fs::is_directory(a.model) ? fs::path(a.model) : tok_dir) / "generation_config.json";
  if (!fs::exists(gen)) return p;
  const auto g = read_json_file(gen);
  if (g.contains("temperature") && g["temperature"].is_number()) p.temperature = g["temperature"];
  if (g.contains("top_p") && g["top_p"].is_number()) p.top_p = g["top_p"];
  if (g.contains("top_k") && g["top_k"].is_number_integer()) p.top_k = g["top_k"];
  if (g.contains("min_p") && g["min_p"].is_number()) p.min_p = g["min_p"];
  p.validate();
  return p;
}

std::optional<ChatTemplate> load_chat_template(const fs::path& dir) {
  try {
    return ChatTemplate::load(dir);
  } catch (const Error& e) {
    fmt::print(stderr, "warning: no chat template ({}); /v1/chat/completions will answer 400\n", e.what());
    return std::nullopt;
  }
}

// vLLM's rule on the GPU: the cache gets what is left of --gpu-memory-utilization x total after
// the weights, the activations of the largest step and a fixed reserve (cuBLAS, graphs, scratch).
uint64_t gpu_kv_budget(const ServeArgs& a, uint64_t weights, const ModelConfig& c) {
  const GpuMemoryInfo gpu = gpu_memory_info();
  const uint64_t per_token = uint64_t(16 * c.hidden_size + 12 * c.intermediate_size +
                                      8 * (c.num_heads + c.num_kv_heads) * c.head_dim);
  const uint64_t activations = uint64_t(a.max_num_batched_tokens) * per_token + (uint64_t(2) << 30);
  const double allowed = a.gpu_memory_utilization * double(gpu.total) - double(gpu.total - gpu.free);
  // Tensor parallelism: each GPU holds about 1/N of the projections (the embedding table whole)
  // and its share of the KV heads; the budget is returned in whole-model cache bytes.
  const int64_t tp = a.backend.tensor_parallel_size;
  const uint64_t table = a.backend.offload_embeddings ? 0 : uint64_t(c.vocab_size * c.hidden_size * 2);
  if (tp > 1) weights = weights / uint64_t(tp) + table;
  const double kv_share = double(c.num_kv_heads) / double(std::max<int64_t>(1, c.num_kv_heads / tp));
  const double budget = allowed - double(weights) - double(activations);
  if (budget <= 0)
    fail("--gpu-memory-utilization {}: {:.2f} GB of the GPU's {:.2f} GB leave no room for a KV cache after the "
         "weights ({:.2f} GB) and activations ({:.2f} GB); raise it or lower --max-num-batched-tokens",
         a.gpu_memory_utilization, allowed / 1e9, double(gpu.total) / 1e9, double(weights) / 1e9,
         double(activations) / 1e9);
  return uint64_t(budget * kv_share);
}

KvCacheOptions kv_options(const ServeArgs& a, uint64_t weight_bytes, const ModelConfig& c) {
  KvCacheOptions o;
  o.device = a.backend.device;
  o.dtype = a.backend.cache_dtype();
  if (!a.kv_cache_memory.empty()) o.memory_bytes = parse_byte_size(a.kv_cache_memory);
  else o.memory_bytes = a.backend.device == "cuda" ? gpu_kv_budget(a, weight_bytes, c) : (uint64_t(1) << 30);
  o.max_model_len = a.max_model_len;
  o.window_pool = !a.full_window_cache;
  o.max_num_seqs = a.max_num_seqs;
  o.max_num_batched_tokens = a.max_num_batched_tokens;
  return o;
}

void serve(const ServeArgs& a) {
  // First, before any thread exists: the CUDA runtime starts threads of its own when the backend
  // is made, and a SIGTERM delivered to one of those (not blocked there) killed the server
  // instead of stopping it cleanly (seen on the H200, 2026-12-04).
  server::block_shutdown_signals();
  a.backend.validate();
  if (!(a.gpu_memory_utilization > 0 && a.gpu_memory_utilization <= 1))
    fail("--gpu-memory-utilization must be in (0, 1], got {}", a.gpu_memory_utilization);
  const fs::path tok_dir = tokenizer_dir(a);
  const Tokenizer tokenizer = Tokenizer::load(tok_dir);
  const Checkpoint ck = load_checkpoint(a.model, LoadOptions{{}, !a.quiet});
  ModelWeights weights = ModelWeights::bind(ck);
  if (a.backend.quantize_lm_head) weights.quantize_lm_head();
  if (a.backend.offload_embeddings) weights.check_embedding_offload();
  const bool offload = a.backend.device == "cuda" && a.backend.offload_embeddings;
  const KvCachePlan plan =
      plan_kv_cache(weights.config, kv_options(a, bound_weight_bytes(weights, ck, offload).total(), weights.config));
  fmt::print(stderr, "{}\n", plan.describe(weights.config));
  if (a.backend.device == "cpu")
    fmt::print(stderr, "device cpu: the KV cache is sized by --kv-cache-memory ({}); --gpu-memory-utilization is "
                       "for the CUDA backend\n", a.kv_cache_memory.empty() ? "1GiB" : a.kv_cache_memory);
  if (weights.config.num_sliding_layers() > 0 && !plan.cache.has_window_pool())
    fmt::print(stderr, "sliding-window layers keep K/V for every position ({})\n",
               a.full_window_cache ? "--disable-hybrid-kv-cache-manager"
                                   : "the main pool would be smaller than their window pool, so they share it");
  a.backend.print_tensor_parallel_plan(weights.config);
  std::unique_ptr<Backend> backend = make_backend(weights, a.backend.options(plan.cache, !a.quiet));

  EngineConfig ec;
  ec.scheduler = {a.max_num_seqs, a.max_num_batched_tokens, a.prefix_caching, weights.config.sliding_window};
  ec.max_model_len = plan.max_model_len;
  ec.num_blocks = plan.cache.num_blocks;
  ec.num_window_blocks = plan.cache.num_window_blocks;
  ec.max_queued_requests = a.max_queued_requests;
  fmt::print(stderr, "scheduler: --max-num-seqs {}, --max-num-batched-tokens {}, prefix caching {}, "
                     "--max-queued-requests {} (more: 429)\n",
             a.max_num_seqs, a.max_num_batched_tokens, a.prefix_caching ? "on" : "off", a.max_queued_requests);

  LlmEngine engine(*backend, tokenizer, ec);
  std::vector<int32_t> stop_ids = tokenizer.stop_ids();
  if (auto eos = tokenizer.eos_id()) stop_ids.push_back(*eos);
  server::ServingModel model{
      .name = a.served_model_name.empty() ? a.model : a.served_model_name,
      .tokenizer = tokenizer,
      .chat_template = load_chat_template(tok_dir),
      .defaults = sampling_defaults(a, tok_dir),
      .stop_ids = stop_ids,
      .max_model_len = plan.max_model_len,
      .split_reasoning = tokenizer.token_to_id("<think>").has_value() && tokenizer.token_to_id("</think>").has_value(),
      .engine = engine,
      .created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count(),
  };
  server::HttpOptions http;
  http.host = a.host;
  http.port = a.port;
  http.api_key = a.api_key;
  http.threads = a.http_threads;
  http.max_body_bytes = size_t(parse_byte_size(a.max_request_body));
  server::serve_http(model, http);
}
#else
void serve(const ServeArgs&) {
  fail("this fp4llm was built without the HTTP server (cpp-httplib was not found: install libcpp-httplib-dev)");
}
#endif

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve MODEL over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions,\n"
      "/v1/models, /health, /metrics) with continuous batching over a paged KV cache.");
  cmd->add_option("MODEL", a->model, "model folder or .gguf file")->required();
  cmd->add_option("--host", a->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "port to listen on (0: any free port, printed)")->capture_default_str();
  cmd->add_option("--served-model-name", a->served_model_name, "the model name clients use (default: MODEL)");
  cmd->add_option("--api-key", a->api_key, "require 'Authorization: Bearer KEY' on /v1 routes")
      ->envname("FP4LLM_API_KEY");
  cmd->add_option("--tokenizer", a->tokenizer, "folder with tokenizer.json (default: the model folder)");
  cmd->add_option("--max-model-len", a->max_model_len,
                  "prompt + output tokens per sequence (default: the model's, capped by the KV cache)");
  cmd->add_option("--max-num-seqs", a->max_num_seqs, "most sequences in one batch")->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", a->max_num_batched_tokens,
                  "most tokens per step; longer prompts are prefilled in chunks")->capture_default_str();
  cmd->add_option("--kv-cache-memory", a->kv_cache_memory,
                  "KV cache size, e.g. 2GiB (default: 1GiB on the CPU; on the GPU what --gpu-memory-utilization leaves)");
  cmd->add_option("--gpu-memory-utilization", a->gpu_memory_utilization,
                  "fraction of GPU memory for weights and KV cache (CUDA backend)")->capture_default_str();
  add_backend_flags(cmd, a->backend);
  cmd->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", a->prefix_caching,
                "reuse the KV blocks of repeated prompt prefixes (default on)");
  cmd->add_flag("--disable-hybrid-kv-cache-manager", a->full_window_cache,
                "sliding-window layers (Gemma 3) keep K/V for every position, as the full-attention layers do,\n"
                "instead of only their window in a pool of their own (which holds several times more context)");
  cmd->add_option("--max-queued-requests", a->max_queued_requests,
                  "requests allowed to wait for a batch slot; beyond it the server answers 429")
      ->capture_default_str();
  cmd->add_option("--http-threads", a->http_threads, "HTTP worker threads (one per open request)")
      ->capture_default_str();
  cmd->add_option("--max-request-body", a->max_request_body, "larger request bodies get 413")->capture_default_str();
  cmd->add_flag("--quiet", a->quiet, "no loading progress");
  cmd->callback([a] { serve(*a); });
}

}  // namespace fp4llm::cli
