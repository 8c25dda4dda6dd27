#include <string>
// Random weights with a real model's shapes, made on the GPU for `fp4llm bench --synthetic`:
// the kernels' speed does not depend on the values, only on shapes and bytes, so nothing has to
// be downloaded. Values are kept in a realistic range (no inf/NaN reach the timings).
#include <algorithm>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/device_model.hpp"
#include "backend/cuda/launch_grid.hpp"

namespace fp4llm::cuda {

namespace {

__device__ __forceinline__ uint32_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return uint32_t(x ^ (x >> 31));
}

__global__ void random_words(uint32_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = mix(seed * 0x100000001B3ull + i);
}

// E4M3 codes 0x20..0x3F: block scales between 2^-3 and 1.875.
__global__ void random_scales(uint16_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint32_t r = mix(seed * 0x100000001B3ull + i);
    p[i] = uint16_t((0x20 | (r & 0x1F)) | ((0x20 | ((r >> 8) & 0x1F)) << 8));
  }
}

__global__ void random_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float amplitude) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float u = float(mix(seed * 0x100000001B3ull + i)) * (1.0f / 4294967296.0f);
    p[i] = __float2bfloat16_rn((2.0f * u - 1.0f) * amplitude);
  }
}

// `experts` matrices of the same shape, stacked (MoE experts), or one.
DeviceNvfp4Linear random_linear(int64_t out_features, int64_t in_features, uint64_t& seed, bool gated = false,
                                int64_t experts = 1) {
  DeviceNvfp4Linear d;
  d.gated = gated;
  d.experts = experts;
  d.out_features = out_features;
  d.in_features = in_features;
  d.row_tiles = (out_features + kTileRows - 1) / kTileRows;
  d.k_chunks = (in_features + kChunkCols - 1) / kChunkCols;
  const size_t slots = size_t(d.row_tiles * d.k_chunks * 32 * experts);
  d.packed = DeviceBuffer<uint8_t>(slots * 16);
  d.scales = DeviceBuffer<uint16_t>(slots);
  random_words<<<grid_for(int64_t(slots * 4), 256), 256>>>(reinterpret_cast<uint32_t*>(d.packed.data()), slots * 4, ++seed);
  random_scales<<<grid_for(int64_t(slots), 256), 256>>>(d.scales.data(), slots, ++seed);
  // Weights of magnitude ~ 1/sqrt(in): keeps activations bounded through the layers.
  const float global = 1.0f / (4.0f * std::sqrt(float(in_features)));
  d.tile_scales = DeviceBuffer<float>::from_host(std::vector<float>(size_t(2 * d.row_tiles * experts), global));
  FP4LLM_CUDA_LAUNCHED();
  return d;
}

DeviceBuffer<float> constant(int64_t n, float v) {
  return DeviceBuffer<float>::from_host(std::vector<float>(size_t(n), v));
}

}  // namespace

DeviceModel synthetic_model(const ModelConfig& c, uint64_t seed, bool nvfp4_lm_head, const SyntheticShard& shard) {
  const int64_t lm_head_rows = shard.lm_head_rows ? shard.lm_head_rows : c.vocab_size;
  const int64_t experts = shard.local_experts ? shard.local_experts : c.num_experts;
  DeviceModel d;
  d.config = c;
  const bool gemma = c.family == ModelFamily::Gemma3;
  const float gain = gemma ? 0.0f : 1.0f;  // Gemma norms multiply by (1 + w)
  const int64_t H = c.hidden_size, D = c.head_dim;
  const bool tied_bf16_head = !nvfp4_lm_head && c.tie_word_embeddings && lm_head_rows == c.vocab_size;
  if (shard.offload_embeddings && tied_bf16_head) throw_error(kTiedHeadOffloadError);
  const size_t table = size_t(c.vocab_size * H);
  if (shard.offload_embeddings) d.embed_host = std::make_shared<const HostMappedBuffer<__nv_bfloat16>>(table);
  else d.embed = DeviceBuffer<__nv_bfloat16>(table);
  // Written in place: over PCIe into the mapped host table when offloaded.
  random_bf16<<<grid_for(int64_t(table), 256), 256>>>(const_cast<__nv_bfloat16*>(d.embedding_table()), table, ++seed, 0.05f);
  if (nvfp4_lm_head) {
    d.lm_head_nvfp4 = random_linear(lm_head_rows, H, seed);
  } else if (!tied_bf16_head) {  // a vocabulary slice is its own matrix
    d.lm_head = DeviceBuffer<__nv_bfloat16>(size_t(lm_head_rows * H));
    random_bf16<<<grid_for(int64_t(d.lm_head.size()), 256), 256>>>(d.lm_head.data(), d.lm_head.size(), ++seed, 0.05f);
  }
  FP4LLM_CUDA_LAUNCHED();
  d.final_norm = constant(H, gain);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    DeviceLayer L;
    L.qkv = random_linear((c.num_heads + 2 * c.num_kv_heads) * D, H, seed);
    L.o = random_linear(H, c.num_heads * D, seed);
    if (c.layer_moe[size_t(l)]) {
      DeviceMoe m;
      m.shape = router_shape(c, shard.first_expert, experts);
      // Router logits of spread ~1 over unit-RMS activations: routing spreads over the experts.
      m.router = DeviceBuffer<__nv_bfloat16>(size_t(c.num_experts * H));
      random_bf16<<<grid_for(int64_t(m.router.size()), 256), 256>>>(m.router.data(), m.router.size(), ++seed,
                                                                     std::sqrt(3.0f / float(H)));
      m.gate_up = random_linear(2 * c.moe_intermediate_size, H, seed, /*gated=*/true, experts);
      m.down = random_linear(H, c.moe_intermediate_size, seed, false, experts);
      L.moe = std::move(m);
    } else {
      L.gate_up = random_linear(2 * c.intermediate_size, H, seed, /*gated=*/true);
      L.down = random_linear(H, c.intermediate_size, seed);
    }
    L.input_norm = constant(H, gain);
    L.post_attention_norm = constant(H, gain);
    L.q_norm = constant(D, gain);
    L.k_norm = constant(D, gain);
    if (gemma) {
      L.pre_feedforward_norm = constant(H, gain);
      L.post_feedforward_norm = constant(H, gain);
    }
    d.layers.push_back(std::move(L));
  }
  FP4LLM_CUDA_CHECK(cudaDeviceSynchronize());
  return d;
}

}  // namespace fp4llm::cuda
