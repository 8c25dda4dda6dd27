#include "engine/kv_cache_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "util/error.hpp"

namespace fp4llm {

uint64_t kv_block_bytes(const ModelConfig& c, KvCacheDtype dtype, int64_t layers) {
  const uint64_t element = dtype == KvCacheDtype::Bf16 ? 2 : 1;
  return uint64_t(layers) * uint64_t(c.kv_bytes_per_token_per_layer()) * KvCacheConfig::kBlockSize * element;
}

// A sequence's chunk of n tokens from p0 spans at most ceil((W - 1 + n) / 16) + 1 blocks; summed
// over the running sequences, whose chunks add up to at most the step's token budget.
int64_t window_pool_blocks(int64_t sliding_window, int64_t max_num_seqs, int64_t max_num_batched_tokens) {
  constexpr int64_t B = KvCacheConfig::kBlockSize;
  return max_num_seqs * ((sliding_window - 1 + B - 1) / B + 2) + (max_num_batched_tokens + B - 1) / B;
}

uint64_t parse_byte_size(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  const std::string number(text.substr(0, i));
  std::string unit(text.substr(i));
  for (char& ch : unit) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(number, &used);
    if (used != number.size()) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    fail("'{}' is not a size (examples: 2GiB, 512MiB, 1.5GB, 1000000)", text);
  }
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "k" || unit == "kb") scale = 1e3;
  else if (unit == "m" || unit == "mb") scale = 1e6;
  else if (unit == "g" || unit == "gb") scale = 1e9;
  else if (unit == "kib") scale = 1024.0;
  else if (unit == "mib") scale = 1024.0 * 1024;
  else if (unit == "gib") scale = 1024.0 * 1024 * 1024;
  else if (unit == "tib") scale = 1024.0 * 1024 * 1024 * 1024;
  else fail("'{}' has an unknown unit '{}' (use B, KB, MB, GB, KiB, MiB, GiB, TiB)", text, unit);
  const double bytes = value * scale;
  if (!std::isfinite(bytes) || bytes < 0 || bytes > 1e18) fail("'{}' is out of range", text);
  return uint64_t(bytes);
}

KvCachePlan plan_kv_cache(const ModelConfig& config, const KvCacheOptions& options) {
  KvCachePlan plan;
  plan.cache.dtype = options.dtype;
  const int64_t sliding = config.num_sliding_layers();
  plan.bytes_per_block = kv_block_bytes(config, options.dtype, config.num_layers);
  plan.cache.num_blocks = int64_t(options.memory_bytes / plan.bytes_per_block);
  const int64_t model_max = config.max_position_embeddings > 0 ? config.max_position_embeddings : INT64_MAX;
  if (options.window_pool && sliding > 0 && sliding < config.num_layers) {
    const uint64_t full = kv_block_bytes(config, options.dtype, config.num_layers - sliding);
    const uint64_t window = kv_block_bytes(config, options.dtype, sliding);
    // A sequence never sees further back than its own length: a window longer than the longest
    // sequence holds no more than one of that length.
    const int64_t seen = std::min(config.sliding_window, options.max_model_len.value_or(model_max));
    const int64_t wanted = window_pool_blocks(seen, options.max_num_seqs, options.max_num_batched_tokens);
    const uint64_t window_bytes = uint64_t(wanted) * window;
    const int64_t rest = options.memory_bytes > window_bytes ? int64_t((options.memory_bytes - window_bytes) / full) : 0;
    plan.bytes_per_block = full;
    plan.bytes_per_window_block = window;
    if (rest >= wanted) {
      plan.cache.num_blocks = rest;
      plan.cache.num_window_blocks = wanted;
    } else {  // the main pool would be the smaller one: as many blocks in each
      plan.cache.num_blocks = plan.cache.num_window_blocks = int64_t(options.memory_bytes / (full + window));
    }
  }
  if (plan.cache.num_blocks < 1)
    fail("--kv-cache-memory {} B holds no KV block (one block of {} tokens takes {} B)", options.memory_bytes,
         KvCacheConfig::kBlockSize, plan.bytes_per_block + plan.bytes_per_window_block);
  if (options.max_model_len) {
    if (*options.max_model_len < 2) fail("--max-model-len must be at least 2, got {}", *options.max_model_len);
    if (*options.max_model_len > model_max)
      fail("--max-model-len {} exceeds the model's max_position_embeddings {}", *options.max_model_len, model_max);
    if (*options.max_model_len > plan.tokens())
      fail("--max-model-len {} tokens do not fit the KV cache: --kv-cache-memory {} B holds {} tokens "
           "({} blocks of {}); raise --kv-cache-memory or lower --max-model-len",
           *options.max_model_len, options.memory_bytes, plan.tokens(), plan.cache.num_blocks,
           KvCacheConfig::kBlockSize);
    plan.max_model_len = *options.max_model_len;
  } else {
    plan.max_model_len = std::min(model_max, plan.tokens());
  }
  return plan;
}

std::string KvCachePlan::describe(const ModelConfig& config) const {
  const int64_t main_layers = config.num_layers - (cache.has_window_pool() ? config.num_sliding_layers() : 0);
  std::string text = fmt::format(
      "KV cache: {} blocks x {} tokens = {} tokens, {} {:.3f} GiB ({} B per block: {} layers x {} kv heads x "
      "head_dim {}, K and V); max model length {} tokens ({:.1f} full-length sequences fit)",
      cache.num_blocks, KvCacheConfig::kBlockSize, tokens(), cache.dtype == KvCacheDtype::Bf16 ? "bf16" : "fp8",
      double(bytes()) / (1024.0 * 1024 * 1024), bytes_per_block, main_layers, config.num_kv_heads,
      config.head_dim, max_model_len, double(tokens()) / double(max_model_len));
  if (cache.has_window_pool())
    text += fmt::format("; the {} sliding-window layers keep only their {}-token window, in a pool of {} blocks "
                        "({:.3f} GiB of the total)",
                        config.num_sliding_layers(), config.sliding_window, cache.num_window_blocks,
                        double(bytes_per_window_block * uint64_t(cache.num_window_blocks)) / (1024.0 * 1024 * 1024));
  return text;
}

}  // namespace fp4llm
