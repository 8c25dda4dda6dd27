#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "backend/backend_factory.hpp"
#include "cli/backend_flags.hpp"
#include "cli/commands.hpp"
#include "engine/generation.hpp"
#include "engine/kv_cache_plan.hpp"
#include "io/checkpoint.hpp"
#include "model/model_weights.hpp"
#include "template/chat_template.hpp"
#include "tokenizer/gguf_tokenizer_files.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/json_file.hpp"

namespace fp4llm::cli {

namespace {

struct RunArgs {
  std::string model, prompt, tokenizer, system;
  bool chat = true, ignore_eos = false, quiet = false;
  BackendFlags backend;
  std::string enable_thinking;  // "", "true", "false"
  int64_t max_tokens = 256, max_model_len = 4096, max_num_batched_tokens = 2048;
  bool full_window_cache = false;  // --disable-hybrid-kv-cache-manager
  std::optional<float> temperature, top_p, min_p;
  std::optional<int32_t> top_k;
  float repetition_penalty = 1.0f, presence_penalty = 0.0f, frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
};

namespace fs = std::filesystem;

// Where the tokenizer and the chat template come from: --tokenizer DIR, else the model folder,
// else the GGUF file's own metadata (Tokenizer::load reads a .gguf).
fs::path tokenizer_dir(const RunArgs& a) {
  if (!fs::exists(a.model)) fail("model path {} does not exist", a.model);
  return a.tokenizer.empty() ? fs::path(a.model) : fs::path(a.tokenizer);
}

// A GGUF carries its template in tokenizer.chat_template; base models often have none, and then
// the prompt goes in as plain text (a note says so) rather than failing.
std::optional<ChatTemplate> load_chat_template(const fs::path& tok_dir, bool quiet) {
  if (tok_dir.extension() != ".gguf") return ChatTemplate::load(tok_dir);
  const GgufTokenizerFiles f = read_gguf_tokenizer_files(tok_dir);
  if (!f.tokenizer_config.contains("chat_template")) {
    if (!quiet)
      fmt::print(stderr, "note: {} has no chat template (tokenizer.chat_template); the prompt is sent "
                         "as plain text\n", tok_dir.string());
    return std::nullopt;
  }
  return ChatTemplate::from_source(f.tokenizer_config["chat_template"].get<std::string>(), f.tokenizer_config);
}

// vLLM's behaviour: sampling defaults come from generation_config.json when the model has one.
SamplingParams sampling_params(const RunArgs& a, const fs::path& tok_dir) {
  SamplingParams p;
  const fs::path gen = (fs::is_directory(a.model) ? fs::path(a.model) : tok_dir) / "generation_config.json";
  if (fs::exists(gen)) {
    const auto g = read_json_file(gen);
    if (g.contains("temperature") && g["temperature"].is_number()) p.temperature = g["temperature"];
    if (g.contains("top_p") && g["top_p"].is_number()) p.top_p = g["top_p"];
    if (g.contains("top_k") && g["top_k"].is_number_integer()) p.top_k = g["top_k"];
    if (g.contains("min_p") && g["min_p"].is_number()) p.min_p = g["min_p"];
  }
  if (a.temperature) p.temperature = *a.temperature;
  if (a.top_p) p.top_p = *a.top_p;
  if (a.top_k) p.top_k = *a.top_k;
  if (a.min_p) p.min_p = *a.min_p;
  p.repetition_penalty = a.repetition_penalty;
  p.presence_penalty = a.presence_penalty;
  p.frequency_penalty = a.frequency_penalty;
  p.seed = a.seed;
  p.validate();
  return p;
}

void print_memory_plan(const ModelWeights& w, const Checkpoint& ck, const KvCacheConfig& kv, int64_t tokens,
                       const BackendFlags& flags) {
  const bool offload = flags.device == "cuda" && flags.offload_embeddings;
  const auto [nvfp4, other] = bound_weight_bytes(w, ck, offload);
  // As allocated: the sliding layers' ring (if any) holds num_window_blocks blocks.
  const int64_t ring_layers = kv.has_window_pool() ? w.config.num_sliding_layers() : 0;
  const uint64_t kv_bytes = kv_block_bytes(w.config, kv.dtype, w.config.num_layers - ring_layers) * uint64_t(kv.num_blocks) +
                            kv_block_bytes(w.config, kv.dtype, ring_layers) * uint64_t(kv.num_window_blocks);
  const std::string host =
      offload ? fmt::format("; embedding table {:.3f} GB in host memory", double(w.config.vocab_size * w.config.hidden_size * 2) / 1e9)
              : "";
  const std::string ring =
      kv.has_window_pool() ? fmt::format(" (the {} sliding-window layers: a ring of {} tokens)", ring_layers,
                                         kv.num_window_blocks * KvCacheConfig::kBlockSize)
                           : "";
  fmt::print(stderr,
             "memory: weights {:.3f} GB (NVFP4 {:.3f} GB, 16/32-bit {:.3f} GB) + KV cache {} {:.3f} GB "
             "for {} tokens{}, on the {}{}\n",
             (nvfp4 + other) / 1e9, nvfp4 / 1e9, other / 1e9, kv.dtype == KvCacheDtype::Bf16 ? "bf16" : "fp8",
             kv_bytes / 1e9, tokens, ring, flags.device == "cuda" ? "GPU" : "CPU", host);
}

void run(const RunArgs& a) {
  a.backend.validate();
  const fs::path tok_dir = tokenizer_dir(a);
  const Tokenizer tokenizer = Tokenizer::load(tok_dir);
  std::optional<ChatTemplate> chat;
  if (a.chat) {
    try {
      chat = load_chat_template(tok_dir, a.quiet);
    } catch (const Error& e) {
      fail("{}\n(pass --no-chat to send the prompt as plain text)", e.what());
    }
  }
  GenerationOptions gen;
  gen.sampling = sampling_params(a, tok_dir);
  gen.max_tokens = a.max_tokens;
  gen.ignore_eos = a.ignore_eos;
  gen.stop_ids = tokenizer.stop_ids();
  if (auto eos = tokenizer.eos_id()) gen.stop_ids.push_back(*eos);
  gen.stop_strings = a.stop;

  const Checkpoint ck = load_checkpoint(a.model, LoadOptions{{}, !a.quiet});
  ModelWeights weights = ModelWeights::bind(ck);
  if (a.backend.quantize_lm_head) weights.quantize_lm_head();
  if (a.backend.offload_embeddings) weights.check_embedding_offload();
  const int64_t model_len = std::min<int64_t>(
      a.max_model_len, weights.config.max_position_embeddings > 0 ? weights.config.max_position_embeddings : a.max_model_len);
  if (a.max_num_batched_tokens < 1) fail("--max-num-batched-tokens must be >= 1, got {}", a.max_num_batched_tokens);
  KvCacheConfig kv;
  kv.dtype = a.backend.cache_dtype();
  kv.num_blocks = (model_len + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize;
  // Sliding-window layers in a ring of blocks, where that is smaller than the model length.
  const int64_t ring = conversation_window_blocks(weights.config.sliding_window, a.max_num_batched_tokens, model_len);
  if (!a.full_window_cache && weights.config.num_sliding_layers() > 0 && ring < kv.num_blocks) kv.num_window_blocks = ring;
  if (!a.quiet) {
    print_memory_plan(weights, ck, kv, model_len, a.backend);
    a.backend.print_tensor_parallel_plan(weights.config);
  }
  const auto backend = make_backend(weights, a.backend.options(kv, !a.quiet));
  Conversation conversation(*backend, tokenizer, {model_len, a.max_num_batched_tokens, kv.num_window_blocks});

  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  const auto turn = [&](const std::string& user) {
    std::vector<int32_t> prompt;
    if (chat) {
      messages.push_back({{"role", "user"}, {"content", user}});
      ChatOptions opts;
      opts.add_generation_prompt = true;
      if (!a.enable_thinking.empty()) opts.extra_kwargs["enable_thinking"] = a.enable_thinking == "true";
      // The template writes BOS itself where the model wants one.
      prompt = tokenizer.encode(chat->render(messages, opts), EncodeOptions{.add_special_tokens = false});
    } else {
      prompt = tokenizer.encode(user);
    }
    GenerationStats stats;
    std::string reply;
    conversation.generate(prompt, gen, [&](const std::string& piece) {
      reply += piece;
      std::cout << piece << std::flush;
    }, stats);
    std::cout << "\n";
    if (chat) messages.push_back({{"role", "assistant"}, {"content", reply}});
    if (!a.quiet)
      fmt::print(stderr, "[{} prompt tokens ({} cached) in {:.2f} s; {} tokens in {:.2f} s, {:.1f} tok/s; {}]\n",
                 stats.prompt_tokens, stats.cached_tokens, stats.prefill_seconds, stats.generated_tokens,
                 stats.decode_seconds,
                 stats.decode_seconds > 0 ? stats.generated_tokens / stats.decode_seconds : 0.0,
                 stats.finish_reason);
  };
  if (!a.prompt.empty()) {
    turn(a.prompt);
    return;
  }
  std::string line;
  while (true) {
    std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line) || line == "/quit" || line == "/exit") break;
    if (!line.empty()) turn(line);
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "Generate text from MODEL (a Hugging Face folder: NVFP4 ModelOpt / compressed-tensors, or\n"
      "BF16 quantized at load; or a .gguf file, requantized to NVFP4) and stream it to the\n"
      "terminal. With PROMPT: one answer. Without: an interactive chat (history kept, /quit).");
  cmd->add_option("MODEL", a->model, "model folder or .gguf file")->required();
  cmd->add_option("PROMPT", a->prompt, "prompt; omit for an interactive chat");
  cmd->add_option("--tokenizer", a->tokenizer,
                  "folder with tokenizer.json (default: the model folder, or a GGUF's own tokenizer)");
  cmd->add_option("--max-tokens", a->max_tokens, "most tokens to generate per answer")->capture_default_str();
  cmd->add_option("--max-model-len", a->max_model_len, "prompt + answer length the KV cache holds")->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", a->max_num_batched_tokens,
                  "most prompt tokens per forward pass; longer prompts are prefilled in chunks")->capture_default_str();
  cmd->add_flag("--disable-hybrid-kv-cache-manager", a->full_window_cache,
                "sliding-window layers (Gemma 3) keep K/V for every position instead of a ring of blocks\n"
                "holding their window and one prefill chunk");
  cmd->add_option("--temperature", a->temperature, "0 = greedy (default: generation_config.json, else 1)");
  cmd->add_option("--top-p", a->top_p, "nucleus sampling mass (default: generation_config.json, else 1)");
  cmd->add_option("--top-k", a->top_k, "keep the k most likely tokens; 0 = off");
  cmd->add_option("--min-p", a->min_p, "drop tokens below min_p x the top probability");
  cmd->add_option("--repetition-penalty", a->repetition_penalty, "> 1 discourages repeating prompt and output tokens");
  cmd->add_option("--presence-penalty", a->presence_penalty, "subtracted once from tokens already generated");
  cmd->add_option("--frequency-penalty", a->frequency_penalty, "subtracted per occurrence in the output");
  cmd->add_option("--seed", a->seed, "sampling seed, for reproducible output");
  cmd->add_option("--stop", a->stop, "stop when this string appears (repeatable)");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep generating past end-of-sequence tokens");
  cmd->add_flag("--chat,!--no-chat", a->chat, "wrap the prompt in the model's chat template (default on)");
  cmd->add_option("--system", a->system, "system prompt (chat mode)");
  cmd->add_option("--enable-thinking", a->enable_thinking, "Qwen3: true or false (chat template variable)")
      ->check(CLI::IsMember({"true", "false"}));
  add_backend_flags(cmd, a->backend);
  cmd->add_flag("--quiet", a->quiet, "print only the generated text");
  cmd->callback([a] { run(*a); });
}

}  // namespace fp4llm::cli
