// `fp4llm bench`: decode and prefill speed on the GPU, against the bandwidth floor.
#include <fmt/format.h>

#include <fstream>

#include "backend/benchmark.hpp"
#include "cli/backend_flags.hpp"
#include "cli/commands.hpp"
#include "util/build_commit.hpp"
#include "util/error.hpp"

namespace fp4llm::cli {

namespace {

struct BenchArgs {
  BenchOptions options;
  std::string batches = "1,2,4,8,16,32,64", json_path, kv_cache_dtype = "fp8";
  bool quiet = false;
};

std::vector<int64_t> parse_batches(const std::string& list) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    int64_t v = 0;
    try {
      v = std::stoll(item);
    } catch (...) {
      fail("--batch: '{}' is not a number (expected a list like 1,8,64)", item);
    }
    if (v < 1 || v > 1024) fail("--batch: {} is outside 1..1024", v);
    out.push_back(v);
    at = comma + 1;
  }
  return out;
}

// --trace: the kernels that add most to a decode step (per batch size) or to the prefill.
void print_timeline(const nlohmann::json& d, const std::string& what) {
  if (!d.contains("timeline") || d["timeline"].is_null()) return;
  const auto& t = d["timeline"];
  fmt::print("  {} trace: {:.1f} us a step over {} steps; kernels by their share of the critical path:\n", what,
             t["span_us"].get<double>(), t["steps"].get<int64_t>());
  fmt::print("  {:>9} {:>9} {:>8} {:>8}  {}\n", "us/step", "launches", "mean us", "lead us", "kernel [grid]");
  int shown = 0;
  for (const auto& k : t["kernels"]) {
    if (++shown > 16) break;
    const auto grid = k["grid"].get<std::vector<int64_t>>();
    fmt::print("  {:>9.1f} {:>9.1f} {:>8.2f} {:>8.2f}  {} [{}x{}x{}]\n", k["critical_us_per_step"].get<double>(),
               k["launches_per_step"].get<double>(), k["mean_us"].get<double>(), k["mean_lead_us"].get<double>(),
               k["name"].get<std::string>(), grid[0], grid[1], grid[2]);
  }
}

void print_table(const nlohmann::json& r) {
  fmt::print("{} on {} (copy bandwidth {:.0f} GB/s), KV {}, {} in / {} out, {}\n", r["model"].get<std::string>(),
             r["gpu"].get<std::string>(), r["copy_bandwidth_gb_per_s"].get<double>(), r["kv_cache_dtype"].get<std::string>(),
             r["input_len"].get<int64_t>(), r["output_len"].get<int64_t>(), r["cuda_graphs"].get<bool>() ? "CUDA graphs" : "eager");
  fmt::print("{:>6} {:>12} {:>10} {:>12} {:>10} {:>10}\n", "batch", "decode tok/s", "ms/step", "GB/step", "of floor", "TTFT ms");
  for (const auto& d : r["decode"])
    fmt::print("{:>6} {:>12.1f} {:>10.3f} {:>12.3f} {:>9.1f}% {:>10.1f}\n", d["batch"].get<int64_t>(),
               d["decode_tokens_per_s"].get<double>(), d["decode_ms_per_step"].get<double>(),
               d["bytes_per_step"].get<double>() / 1e9, 100 * d["fraction_of_bandwidth_floor"].get<double>(),
               d["time_to_first_token_ms"].get<double>());
  for (const auto& d : r["decode"]) {
    const double experts = d.value("distinct_experts_per_step", 0.0);
    if (experts > 0)
      fmt::print("  batch {}: {:.1f} distinct experts per step over all layers (the floor reads only those)\n",
                 d["batch"].get<int64_t>(), experts);
  }
  for (const auto& d : r["decode"]) {
    if (d["profile_us_per_step"].is_null()) continue;
    std::string line;
    for (const auto& [stage, us] : d["profile_us_per_step"].items()) line += fmt::format(" {} {:.0f}", stage, us.get<double>());
    fmt::print("  batch {} stages (us/step):{}\n", d["batch"].get<int64_t>(), line);
  }
  for (const auto& d : r["decode"]) print_timeline(d, fmt::format("batch {}", d["batch"].get<int64_t>()));
  if (r.contains("prefill")) {
    const auto& p = r["prefill"];
    fmt::print("prefill {} tokens: {:.1f} ms, {:.0f} tok/s, {:.0f} TFLOP/s (projections), {:.0f} with attention\n",
               p["tokens"].get<int64_t>(), p["ms"].get<double>(), p["tokens_per_s"].get<double>(),
               p["linear_tflops"].get<double>(), p["tflops_with_attention"].get<double>());
    if (p.contains("profile_us") && !p["profile_us"].is_null()) {
      std::string line;
      for (const auto& [stage, us] : p["profile_us"].items()) line += fmt::format(" {} {:.0f}", stage, us.get<double>());
      fmt::print("  prefill stages (us per prompt):{}\n", line);
    }
    print_timeline(p, "prefill");
  }
  const auto& m = r["memory"];
  fmt::print("GPU memory: {:.2f} GB used (weights {:.2f}, KV cache {:.2f}, workspace {:.2f}; allocator peak {:.2f})\n",
             m["gpu_used_bytes"].get<double>() / 1e9, m["weights_bytes"].get<double>() / 1e9,
             m["kv_cache_bytes"].get<double>() / 1e9, m["workspace_bytes"].get<double>() / 1e9,
             m["allocator_peak_bytes"].get<double>() / 1e9);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Measure decode and prefill speed on the GPU. Decode tok/s is reported with the bytes a step must read "
      "(every weight once, plus the KV cache) as a fraction of the measured copy bandwidth: the physical floor.");
  cmd->add_option("model", a->options.model, "model folder (or use --synthetic)");
  cmd->add_option("--synthetic", a->options.synthetic,
                  "random NVFP4 weights with a real model's shapes, generated on the GPU: " +
                      fmt::format("{}", fmt::join(synthetic_model_names(), ", ")));
  cmd->add_option("--batch", a->batches, "decode batch sizes, comma-separated")->capture_default_str();
  cmd->add_option("--input-len", a->options.input_len, "prompt tokens per sequence")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--output-len", a->options.output_len, "generated tokens per sequence")->capture_default_str()->check(CLI::Range(5, 1 << 20));
  cmd->add_option("--prefill-len", a->options.prefill_len, "tokens of the single-prompt prefill measurement (0: skip)")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--kv-cache-dtype", a->kv_cache_dtype, "fp8 or bf16")->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", a->options.max_num_batched_tokens,
                  "prompt tokens per step: prompts are prefilled in chunks, as `serve` does (0: each prompt in one step)")
      ->capture_default_str()->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  cmd->add_option("--json", a->json_path, "also write the results to this JSON file");
  cmd->add_flag("--enforce-eager", a->options.enforce_eager, "launch kernels one by one instead of replaying CUDA graphs");
  cmd->add_flag("--quantize-lm-head", a->options.quantize_lm_head,
                "NVFP4 lm_head (a real model's 16-bit head quantized at load; random for --synthetic)");
  cmd->add_flag("!--disable-hybrid-kv-cache-manager", a->options.window_pool,
                "sliding-window layers (Gemma 3) keep K/V for every position instead of only their window");
  cmd->add_flag("--offload-embeddings", a->options.offload_embeddings,
                "keep the token-embedding table in pinned host memory, its rows read over PCIe (a tied lm_head "
                "needs --quantize-lm-head then)");
  cmd->add_flag("--profile", a->options.profile, "also time each stage of a few decode steps (eager) and of one prefill, and print them");
  cmd->add_option("--trace", a->options.trace_path,
                  "also record every kernel of 3 replayed decode steps per batch size and of one prefill on the GPU's "
                  "clock (CUPTI) into this CSV file, and print what each kernel adds to the step's critical path "
                  "(overlapped early launches count only where they extend the step); all timings then carry the "
                  "recording's cost");
  cmd->add_option("--tensor-parallel-size", a->options.tensor_parallel_size,
                  "split the model over this many GPUs (NCCL); bytes, floor and memory are per GPU (rank 0's)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--enable-expert-parallel", a->options.expert_parallel,
                "with --tensor-parallel-size: whole MoE experts per GPU instead of a slice of every expert");
  cmd->add_flag("--quiet", a->quiet, "no progress bars");
  cmd->callback([a] {
    if (a->options.model.empty() == a->options.synthetic.empty()) fail("bench: give a model folder or --synthetic NAME (one of them)");
    a->options.fp8_kv = parse_kv_cache_dtype(a->kv_cache_dtype) == KvCacheDtype::Fp8E4M3;
    a->options.batches = parse_batches(a->batches);
    a->options.progress = !a->quiet;
    nlohmann::json r = run_benchmark(a->options);
    // The build's own commit; FP4LLM_COMMIT names another (a tree copied without its history).
    const char* commit = std::getenv("FP4LLM_COMMIT");
    r["commit"] = commit ? commit : build_commit();
    print_table(r);
    if (!a->json_path.empty()) {
      std::ofstream f(a->json_path);
      if (!f) fail("cannot write {}", a->json_path);
      f << r.dump(2) << "\n";
    }
  });
}

}  // namespace fp4llm::cli
