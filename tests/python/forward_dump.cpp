// Test tool: runs the CPU reference backend over token prompts and writes every position's
// logits to a safetensors file (logits_<i>: F32 [tokens, vocab]), for comparisons with
// transformers (tools/hf_compare.py) and between prefill and step-by-step decoding.
//   fp4llm_forward_dump MODEL_DIR PROMPTS.json OUT.safetensors [bf16|fp8] [CHUNK] [cpu|cuda]
//                       [nvfp4-head] [tp=N] [expert-parallel] [fp8-prefill] [offload-embeddings] [float32-products]
//                       [window-pool]
// PROMPTS.json is a list of token-id lists. CHUNK > 0 feeds each prompt CHUNK tokens per step
// (exercising the cache across steps); 0 feeds it whole; -1 runs all prompts as one batch;
// -2 decodes all prompts in lockstep, one token of each per step (batched decode). fp8-prefill:
// products of more than 64 rows in FP8 (CpuBackend::set_fp8_prefill; FP4LLM_FP8_PREFILL=1 on
// the GPU). offload-embeddings: the embedding table in host memory (the CUDA backend).
// float32-products: the CPU's activations enter products unrounded (set_bf16_products(false)).
// window-pool (CHUNK > 0 or -2): the sliding-window layers keep K/V in a window pool, each prompt
// in a ring of as few blocks as its steps allow (SequenceChunk::window_block_table), so later
// positions overwrite earlier ones; the logits must not change.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend_factory.hpp"
#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/cpu_tensor_parallel.hpp"
#include "io/checkpoint.hpp"
#include "io/safetensors_writer.hpp"
#include "util/json_file.hpp"

using namespace fp4llm;

int main(int argc, char** argv) {
  if (argc < 4) {
    fmt::print(stderr, "usage: {} MODEL_DIR PROMPTS.json OUT.safetensors [bf16|fp8] [CHUNK] [cpu|cuda] [nvfp4-head] [tp=N] [expert-parallel] [fp8-prefill] [offload-embeddings] [float32-products] [window-pool]\n",
               argv[0]);
    return 2;
  }
  try {
    const Checkpoint ck = load_checkpoint(argv[1], LoadOptions{{}, false});
    ModelWeights weights = ModelWeights::bind(ck);
    int64_t tensor_parallel = 1;
    bool expert_parallel = false, fp8_prefill = false, offload_embeddings = false, float32_products = false;
    bool window_pool = false;
    for (int i = 7; i < argc; ++i) {
      const std::string option = argv[i];
      if (option == "nvfp4-head") weights.quantize_lm_head();
      else if (option.rfind("tp=", 0) == 0) tensor_parallel = std::stoll(option.substr(3));
      else if (option == "expert-parallel") expert_parallel = true;
      else if (option == "fp8-prefill") fp8_prefill = true;
      else if (option == "offload-embeddings") offload_embeddings = true;
      else if (option == "float32-products") float32_products = true;
      else if (option == "window-pool") window_pool = true;
      else throw std::runtime_error("unknown option " + option);
    }
    const auto prompts = read_json_file(argv[2]).get<std::vector<std::vector<int32_t>>>();
    KvCacheConfig cache;
    cache.dtype = (argc > 4 && std::string(argv[4]) == "bf16") ? KvCacheDtype::Bf16 : KvCacheDtype::Fp8E4M3;
    const int64_t chunk = argc > 5 ? std::stoll(argv[5]) : 0;
    const std::string device = argc > 6 ? argv[6] : "cpu";
    if (fp8_prefill) setenv("FP4LLM_FP8_PREFILL", "1", 1);  // read once, when the GPU first needs it
    const auto make = [&] {
      auto backend = make_backend(weights, BackendOptions{device, cache, false, false, tensor_parallel, expert_parallel,
                                                                offload_embeddings});
      if (fp8_prefill && device == "cpu") {
        auto* cpu = dynamic_cast<cpu::CpuBackend*>(backend.get());
        if (!cpu) throw std::runtime_error("fp8-prefill on the CPU needs one rank");
        cpu->set_fp8_prefill(true);
      }
      if (float32_products && device == "cpu") {
        if (auto* cpu = dynamic_cast<cpu::CpuBackend*>(backend.get())) cpu->set_bf16_products(false);
        if (auto* ranks = dynamic_cast<cpu::CpuTensorParallelBackend*>(backend.get())) ranks->set_bf16_products(false);
      }
      return backend;
    };
    std::vector<TensorToWrite> out;
    const auto add_logits = [&](size_t p, const float* data, int64_t n) {
      std::vector<uint8_t> bytes(size_t(n * weights.config.vocab_size) * 4);
      std::memcpy(bytes.data(), data, bytes.size());
      out.push_back({fmt::format("logits_{}", p), DType::F32, {n, weights.config.vocab_size},
                     Bytes::owned(std::move(bytes))});
    };
    const auto blocks_for = [](int64_t n) {
      return (n + KvCacheConfig::kBlockSize - 1) / KvCacheConfig::kBlockSize;
    };
    const int64_t window = weights.config.sliding_window;
    if (window_pool && (weights.config.num_sliding_layers() == 0 || chunk == 0 || chunk == -1))
      throw std::runtime_error("window-pool needs a model with sliding-window layers and CHUNK > 0 or -2");
    // The ring a prompt of n tokens fed `step` tokens at a time needs: the most blocks one step sees.
    const auto ring_size = [&](int64_t n, int64_t step) {
      int64_t most = 1;
      for (int64_t start = 0; start < n; start += step)
        most = std::max(most, window_blocks_needed(window, start, std::min(step, n - start)));
      return most;
    };
    // Logical block b of a prompt -> ring slot b % size, the slots in reverse order: block
    // first + stride * (size - 1 - slot).
    const auto ring_table = [&](int64_t n, int64_t first, int64_t size, int64_t stride) {
      std::vector<int32_t> table(size_t(blocks_for(n)));
      for (size_t b = 0; b < table.size(); ++b) table[b] = int32_t(first + stride * (size - 1 - int64_t(b) % size));
      return table;
    };
    if (chunk < 0) {  // one batch; each prompt's blocks interleaved with the others'
      int64_t max_blocks = 0;
      for (const auto& ids : prompts) max_blocks = std::max(max_blocks, blocks_for(int64_t(ids.size())));
      cache.num_blocks = max_blocks * int64_t(prompts.size());
      // Window rings interleaved like the main tables: prompt p's slot i is block i * P + p.
      int64_t ring = 1;
      for (const auto& ids : prompts) ring = std::max(ring, ring_size(int64_t(ids.size()), 1));
      if (window_pool) cache.num_window_blocks = ring * int64_t(prompts.size());
      const auto backend = make();
      std::vector<std::vector<int32_t>> tables(prompts.size()), rings(prompts.size());
      ForwardBatch batch;
      batch.all_logits = true;
      for (size_t p = 0; p < prompts.size(); ++p) {
        for (int64_t b = 0; b < blocks_for(int64_t(prompts[p].size())); ++b)
          tables[p].push_back(int32_t(b * int64_t(prompts.size()) + int64_t(p)));
        if (window_pool) rings[p] = ring_table(int64_t(prompts[p].size()), int64_t(p), ring, int64_t(prompts.size()));
        batch.sequences.push_back({prompts[p], 0, tables[p], rings[p]});
      }
      std::vector<float> logits;
      if (chunk == -1) {  // (no window pool: a whole prompt needs all its blocks)
        backend->forward(batch, logits);
        int64_t row = 0;
        for (size_t p = 0; p < prompts.size(); ++p) {
          add_logits(p, &logits[size_t(row * weights.config.vocab_size)], int64_t(prompts[p].size()));
          row += int64_t(prompts[p].size());
        }
      } else {  // -2: lockstep decoding, one token of every unfinished prompt per step
        const int64_t V = weights.config.vocab_size;
        std::vector<std::vector<float>> all(prompts.size());
        for (size_t step = 0;; ++step) {
          ForwardBatch b;
          std::vector<size_t> who;
          for (size_t p = 0; p < prompts.size(); ++p)
            if (step < prompts[p].size()) {
              b.sequences.push_back({std::span(prompts[p]).subspan(step, 1), int64_t(step), tables[p], rings[p]});
              who.push_back(p);
            }
          if (who.empty()) break;
          backend->forward(b, logits);
          for (size_t i = 0; i < who.size(); ++i)
            all[who[i]].insert(all[who[i]].end(), logits.begin() + int64_t(i) * V, logits.begin() + int64_t(i + 1) * V);
        }
        for (size_t p = 0; p < prompts.size(); ++p) add_logits(p, all[p].data(), int64_t(prompts[p].size()));
      }
    }
    for (size_t p = 0; chunk >= 0 && p < prompts.size(); ++p) {
      const auto& ids = prompts[p];
      const int64_t n = int64_t(ids.size());
      cache.num_blocks = blocks_for(n);
      if (window_pool) cache.num_window_blocks = ring_size(n, chunk);
      const auto backend = make();
      std::vector<int32_t> table(size_t(cache.num_blocks)), ring;
      for (size_t b = 0; b < table.size(); ++b) table[b] = int32_t(table.size() - 1 - b);  // not identity
      if (window_pool) ring = ring_table(n, 0, cache.num_window_blocks, 1);
      std::vector<float> all, step;
      for (int64_t start = 0; start < n;) {
        const int64_t len = chunk > 0 ? std::min(chunk, n - start) : n;
        ForwardBatch batch;
        batch.all_logits = true;
        batch.sequences.push_back({std::span(ids).subspan(size_t(start), size_t(len)), start, table, ring});
        backend->forward(batch, step);
        all.insert(all.end(), step.begin(), step.end());
        start += len;
      }
      add_logits(p, all.data(), n);
    }
    write_safetensors(argv[3], out);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
