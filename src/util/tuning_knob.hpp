// Kernel tuning knobs read from the environment (FP4LLM_*), so that variants can be compared on a
// GPU without a rebuild; unset, the measured default applies. Callers read each knob once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fp4llm {

// Every knob the code reads (docs/PERFORMANCE.md's table; tests/python/test_knob_list.py checks
// both against the sources), so that `fp4llm bench` can name a variable that no code reads: a
// retired knob set by an old script would otherwise pass for a measured variant.
inline constexpr const char* kKernelKnobs[] = {
    "FP4LLM_ATTN_CLUSTER",            "FP4LLM_ATTN_EARLY_BLOCKS",       "FP4LLM_ATTN_FP8_AHEAD",          "FP4LLM_ATTN_KEY_ROWS",
    "FP4LLM_ATTN_MIN_SPLIT_KEYS",     "FP4LLM_ATTN_PADDED_MERGE",       "FP4LLM_ATTN_SPLIT_BLOCKS",       "FP4LLM_ATTN_SPLIT_MERGE",
    "FP4LLM_ATTN_WARPS",              "FP4LLM_EXPERTS_DIRECT",          "FP4LLM_EXPERTS_SLICE_LOOP",      "FP4LLM_EXPERTS_SPLITS",
    "FP4LLM_EXPERTS_WGMMA",           "FP4LLM_FLASH_HEADS",             "FP4LLM_FLASH_LONGEST_FIRST",     "FP4LLM_FLASH_MASK_EVERY_TILE",
    "FP4LLM_FLASH_PIPELINED",         "FP4LLM_FLASH_ROPE",              "FP4LLM_FLASH_STAGGER",           "FP4LLM_FLASH_UNPADDED",
    "FP4LLM_FLASH_WGMMA",             "FP4LLM_FLASH_WGMMA_PV",          "FP4LLM_FP8_PREFILL",             "FP4LLM_GEMV_BLOCK_WARPS",
    "FP4LLM_GEMV_KERNEL",             "FP4LLM_GEMV_MIN_CHUNKS",         "FP4LLM_GEMV_MIN_CHUNKS_WIDE",    "FP4LLM_GEMV_SKIP_PADDED_TOKENS",
    "FP4LLM_GPU_NARROWING",           "FP4LLM_KV_LAYOUT",               "FP4LLM_L2_AHEAD",                "FP4LLM_MMA_ATTENTION",
    "FP4LLM_NORMED_MIN_CHUNKS",       "FP4LLM_NORM_DEFERRED",           "FP4LLM_NORM_PROLOGUE",           "FP4LLM_OMIT_STAGE",
    "FP4LLM_PDL",                     "FP4LLM_PDL_ROLES",               "FP4LLM_PDL_TRIGGER",             "FP4LLM_PREFILL_EVEN_SLICES",
    "FP4LLM_PREFILL_GATED_BF16",      "FP4LLM_PREFILL_PAIR",            "FP4LLM_PREFILL_SLICE_ROWS",      "FP4LLM_ROPE_IN_ATTENTION",
    "FP4LLM_ROPE_WARPS",              "FP4LLM_ROUTING_IN_EXPERTS",      "FP4LLM_SMEM_CARVEOUT",           "FP4LLM_WGMMA_CLUSTER",
    "FP4LLM_WGMMA_OVERLAP",           "FP4LLM_WGMMA_PIPELINE",          "FP4LLM_WGMMA_PIPELINE_ABLATE",   "FP4LLM_WGMMA_PIPELINE_DRAIN",
    "FP4LLM_WGMMA_PIPELINE_N32",      "FP4LLM_WGMMA_PIPELINE_SHAPE",    "FP4LLM_WGMMA_PIPELINE_STAGES",   "FP4LLM_WGMMA_RING",
    "FP4LLM_WGMMA_SHARE_X",           "FP4LLM_WGMMA_SHARE_X_CLUSTER",   "FP4LLM_WGMMA_WIDE_STAGES",       "FP4LLM_WGMMA_X_PREFETCH"};

// The parts of a decode step that FP4LLM_PDL_ROLES names (backend/cuda/early_launch.hpp): `mlp` is a
// dense layer's gate/up and down products with their norms, `moe` an MoE layer's router, experts
// and combine.
inline constexpr std::string_view kPdlRoles[] = {"qkv", "rope", "o_proj", "mlp", "moe", "lm_head"};

// The items of a comma-separated knob value, in order; empty ones (",", a trailing comma, an
// empty value) included, so that a check can refuse them.
inline std::vector<std::string_view> knob_list_items(std::string_view value) {
  std::vector<std::string_view> items;
  for (size_t at = 0; at <= value.size();) {
    const size_t end = std::min(value.find(',', at), value.size());
    items.push_back(value.substr(at, end - at));
    at = end + 1;
  }
  return items;
}

// False for a value of a knob with named values that no code selects on (a retired variant);
// true for every other knob and value.
inline bool knob_value_known(std::string_view name, std::string_view value) {
  if (name == "FP4LLM_GEMV_KERNEL") return value == "ring" || value == "ring32" || value == "wgmma" || value == "wgmma_wide";
  if (name == "FP4LLM_ATTN_CLUSTER") return value == "1" || value == "2" || value == "4" || value == "8";
  if (name == "FP4LLM_ATTN_WARPS") return value == "4" || value == "8";
  if (name == "FP4LLM_KV_LAYOUT") return value == "slot_major" || value == "head_major";
  if (name == "FP4LLM_ATTN_SPLIT_MERGE") return value == "rows" || value == "chain" || value == "two_pass";
  if (name == "FP4LLM_ATTN_KEY_ROWS") return value == "0" || value == "1" || value == "bounded";
  if (name == "FP4LLM_FLASH_HEADS") return value == "1" || value == "2" || value == "4";
  if (name == "FP4LLM_WGMMA_RING") return value == "0" || value == "1" || value == "bulk";
  if (name == "FP4LLM_WGMMA_PIPELINE")
    return value == "0" || value == "layout" || value == "layout-written" || value == "layout-unclustered" || value == "tma" ||
           value == "tma-plain";
  if (name == "FP4LLM_WGMMA_PIPELINE_DRAIN") return value == "1" || value == "2" || value == "4";
  if (name == "FP4LLM_WGMMA_PIPELINE_N32") return value == "0" || value == "1";
  if (name == "FP4LLM_WGMMA_PIPELINE_ABLATE")
    return std::ranges::all_of(knob_list_items(value),
                               [](std::string_view item) { return item == "x" || item == "weights" || item == "compute"; });
  if (name == "FP4LLM_WGMMA_CLUSTER") return value == "1" || value == "2" || value == "2-wide";
  if (name == "FP4LLM_WGMMA_SHARE_X")
    return value == "0" || value == "2" || value == "3" || value == "4" || value == "2-every" || value == "3-every" ||
           value == "4-every";
  if (name == "FP4LLM_WGMMA_WIDE_STAGES" || name == "FP4LLM_WGMMA_OVERLAP" || name == "FP4LLM_WGMMA_X_PREFETCH" ||
      name == "FP4LLM_WGMMA_SHARE_X_CLUSTER")
    return value == "0" || value == "1";
  if (name == "FP4LLM_PDL") return value == "0" || value == "all" || value == "experts" || value == "products";
  if (name == "FP4LLM_EXPERTS_SPLITS") return value == "wave";
  if (name == "FP4LLM_GEMV_BLOCK_WARPS") return value == "8" || value == "16" || value == "16-nt2";
  if (name == "FP4LLM_PREFILL_GATED_BF16") return value == "0" || value == "1";
  if (name == "FP4LLM_PREFILL_PAIR") return value == "rows" || value == "slices";
  if (name == "FP4LLM_PREFILL_EVEN_SLICES") return value == "0" || value == "1";
  if (name == "FP4LLM_PDL_TRIGGER") return value == "start" || value == "after_wait";
  if (name == "FP4LLM_OMIT_STAGE")
    return value == "qkv" || value == "attention" || value == "rope" || value == "attention_only" || value == "o_proj" ||
           value == "ffn_in" || value == "down" || value == "lm_head";
  if (name == "FP4LLM_NORM_PROLOGUE") return value == "0" || value == "1" || value == "qkv";
  if (name == "FP4LLM_ATTN_EARLY_BLOCKS") return value == "0" || value == "1";
  if (name == "FP4LLM_EXPERTS_SLICE_LOOP") return value == "0" || value == "1";
  if (name == "FP4LLM_FLASH_STAGGER" || name == "FP4LLM_FLASH_LONGEST_FIRST" || name == "FP4LLM_FLASH_ROPE")
    return value == "0" || value == "1";
  if (name == "FP4LLM_NORM_DEFERRED") return value == "0" || value == "1" || value == "router";
  if (name == "FP4LLM_L2_AHEAD")
    return std::ranges::all_of(knob_list_items(value), [](std::string_view part) {
      return part == "qkv" || part == "qkv_own" || part == "o_proj" || part == "down" || part == "gate_up" || part == "none";
    });
  if (name == "FP4LLM_PDL_ROLES")
    return value == "none" || std::ranges::all_of(knob_list_items(value), [](std::string_view role) {
      return std::ranges::find(kPdlRoles, role) != std::end(kPdlRoles);
    });
  return true;
}

// The knob's integer value, or `fallback` when it is unset.
inline int64_t knob_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

// The knob's text, empty when it is unset.
inline std::string_view knob_text(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string_view(v) : std::string_view();
}

// Two integers "a,b" (comparisons: stage counts, block shapes); `fallback` when unset. Anything
// else is refused with a message naming the knob.
inline std::pair<int, int> knob_pair(const char* name, std::pair<int, int> fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  int a = 0, b = 0;
  char tail = 0;
  if (std::sscanf(v, "%d,%d%c", &a, &b, &tail) != 2)
    throw std::invalid_argument(std::string(name) + ": expected two numbers \"a,b\", got \"" + v + "\"");
  return {a, b};
}

// True when the knob is set to exactly `value`.
inline bool knob_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}

// True when the knob is set to "1", false when set to anything else, `fallback` when unset.
inline bool knob_flag(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  return v ? std::strcmp(v, "1") == 0 : fallback;
}

// False only when the knob is set to "0".
inline bool knob_on(const char* name) {
  const char* v = std::getenv(name);
  return !(v && std::strcmp(v, "0") == 0);
}

}  // namespace fp4llm
