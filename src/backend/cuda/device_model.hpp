// A model's weights resident on the GPU: NVFP4 projections in the kernels' tile layout, q/k/v
// and gate/up fused into one matrix each (one launch, one pass over x), BF16 embeddings and
// lm_head, float32 norm weights. Built from loaded weights or, for `fp4llm bench`, generated
// at random on the GPU with a real model's shapes. With --offload-embeddings the embedding
// table stays in pinned host memory, from which the embedding kernel reads its rows over PCIe
// (a step reads one row per token, not the table).
#pragma once

#include <cuda_bf16.h>

#include <memory>
#include <optional>
#include <vector>

#include "backend/cuda/device_buffer.hpp"
#include "backend/cuda/host_mapped_buffer.hpp"
#include "backend/cuda/moe_layer.hpp"
#include "backend/cuda/nvfp4_linear.hpp"
#include "model/model_weights.hpp"

namespace fp4llm::cuda {

struct DeviceLayer {
  DeviceNvfp4Linear qkv, o, gate_up, down;  // gate_up and down empty in MoE layers
  std::optional<DeviceMoe> moe;             // Qwen3-MoE layers (not mlp_only_layers)
  DeviceBuffer<float> input_norm, post_attention_norm, q_norm, k_norm;
  DeviceBuffer<float> pre_feedforward_norm, post_feedforward_norm;  // Gemma3
  KvCacheScales kv_scales;
};

struct DeviceModel {
  ModelConfig config;
  DeviceBuffer<__nv_bfloat16> embed;            // [vocab, hidden]; empty when offloaded
  // The same in host memory (--offload-embeddings), one table for every tensor-parallel rank.
  std::shared_ptr<const HostMappedBuffer<__nv_bfloat16>> embed_host;
  DeviceBuffer<__nv_bfloat16> lm_head;          // [vocab, hidden]; empty when tied to embed
  std::optional<DeviceNvfp4Linear> lm_head_nvfp4;
  DeviceBuffer<float> final_norm;
  std::vector<DeviceLayer> layers;

  const __nv_bfloat16* embedding_table() const { return embed_host ? embed_host->device() : embed.data(); }
  const __nv_bfloat16* lm_head_bf16() const { return lm_head.size() ? lm_head.data() : embed.data(); }
  uint64_t weight_bytes() const;
  // Bytes one decode step must read: every projection, lm_head, norms (embedding rows aside);
  // for MoE models every expert, though a step reads only the chosen ones (see expert_bytes).
  uint64_t bytes_per_step() const;
  uint64_t expert_bytes() const;      // all experts of all layers (router excluded)
  uint64_t bytes_per_expert() const;  // one expert of one layer; 0 without MoE layers
};

using HostTable = std::shared_ptr<const HostMappedBuffer<__nv_bfloat16>>;

// --offload-embeddings: `weights`' embedding table as BF16 in pinned, mapped host memory; throws
// Error where it is also the BF16 lm_head (ModelWeights::check_embedding_offload).
HostTable host_embedding_table(const ModelWeights& weights);

// Throws Error for what the CUDA backend cannot run (16-bit projections, MoE shapes beyond the
// routing kernels' bounds). With `host_table` (host_embedding_table of these weights, or of the
// model a shard was cut from) the embedding rows are read from it instead of a GPU copy.
DeviceModel upload_model(const ModelWeights& weights, bool progress, HostTable host_table = nullptr);

// Tensor parallelism: what one rank of a synthetic model holds beyond rank_config's shapes.
struct SyntheticShard {
  int64_t lm_head_rows = 0;                     // the rank's vocabulary slice; 0: the whole vocabulary
  int64_t first_expert = 0, local_experts = 0;  // MoE layers' experts here; 0: all
  bool offload_embeddings = false;              // the embedding table in host memory
};

// Random NVFP4 weights with `config`'s shapes, generated on the GPU (nothing to download).
DeviceModel synthetic_model(const ModelConfig& config, uint64_t seed, bool nvfp4_lm_head = false,
                            const SyntheticShard& shard = {});

}  // namespace fp4llm::cuda
