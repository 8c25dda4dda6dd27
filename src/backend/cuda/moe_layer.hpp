// A Qwen3-MoE feed-forward block on the GPU: route, group by expert, gate/up with SiLU and down
// over the chosen experts only (the grouped NVFP4 kernels), then the weighted sum of the chosen
// experts' outputs added to the residual stream in the next RMSNorm's kernel.
// Decode steps read each chosen expert's weights once per step; nothing crosses to the host.
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/device_buffer.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/moe_routing.hpp"
#include "backend/cuda/nvfp4_linear.hpp"
#include "model/model_config.hpp"

namespace fp4llm::cuda {

struct DeviceMoe {
  DeviceBuffer<__nv_bfloat16> router;  // [experts, hidden], BF16 as checkpoints ship it
  DeviceNvfp4Linear gate_up;           // every expert's gate/up, gated tile layout, stacked
  DeviceNvfp4Linear down;              // every expert's down_proj, stacked
  RouterShape shape;
  uint64_t bytes() const { return router.bytes() + gate_up.bytes() + down.bytes(); }
  // Weight bytes of one expert (gate, up and down): what each distinct chosen expert costs a step.
  uint64_t bytes_per_expert() const { return (gate_up.bytes() + down.bytes()) / uint64_t(shape.local()); }
};

// The routing shape of `config`'s MoE layers; expert parallelism: this GPU's experts
// [first_expert, first_expert + local_experts) (0: all).
RouterShape router_shape(const ModelConfig& config, int64_t first_expert = 0, int64_t local_experts = 0);

// Tokens routed per pass: longer prefill steps loop, so the buffers stay bounded.
constexpr int64_t kMoeTokensPerPass = 1024;

// Scratch of moe_mlp for up to `tokens` tokens per pass (fixed addresses: graphs capture them).
struct MoeWorkspace {
  DeviceBuffer<int32_t> topk_expert, group_expert, group_offset, num_groups, row_token, row_slot;
  DeviceBuffer<float> logits, topk_weight, expert_out;
  DeviceBuffer<__nv_bfloat16> act;
  DeviceBuffer<unsigned long long> active_experts;  // distinct experts used, summed over layers and steps
  int64_t tokens = 0;

  // Grows for `tokens` tokens of a model with these MoE shapes (contents lost when it grows).
  void ensure(int64_t tokens, const RouterShape& shape, int64_t intermediate);
  Routing routing();
  uint64_t bytes() const;
};

// x[tokens, hidden] += MoE(h) for the BF16 normalised activations h; then h = rmsnorm(x) * next_w
// (the next layer's input norm), rows of each routing pass once that pass has used them.
// With input_norm (up to kMaxNormedRouterTokens tokens), h is made from x by the router kernel
// (h = rmsnorm(x) * gain(input_norm)) instead of read: no norm kernel before the layer.
void moe_mlp(const DeviceMoe& moe, __nv_bfloat16* h, int64_t tokens, float* x, const float* next_w,
             const NormParams& norm, MoeWorkspace& ws, cudaStream_t stream, const float* input_norm = nullptr);

// moe_mlp with h made from x (input_norm, as above) and without the combine: the chosen experts'
// rows stay in ws.expert_out ([tokens][top_k][hidden]) beside their weights in ws.topk_weight, for
// the next product to add to the stream and normalise itself (NormedInput's delta_weights; up to
// kMaxNormedRouterTokens tokens). next_qkv: that product's weight, whose bytes the down
// projection's blocks ask L2 for while they wait (FP4LLM_L2_AHEAD=qkv), or null.
void moe_experts_for_next_product(const DeviceMoe& moe, __nv_bfloat16* h, int64_t tokens, const float* x,
                                  const NormParams& norm, const float* input_norm, MoeWorkspace& ws, cudaStream_t stream,
                                  const DeviceNvfp4Linear* next_qkv = nullptr);

// One token's MoE layer with h made from x (input_norm, as above), the experts' weighted sum added
// to x by their down projection itself, and the next layer's norm deferred to its qkv
// (FP4LLM_NORM_DEFERRED, nvfp4_experts_down_deferred_norm): h ends as x times next_w in BF16, and
// deferred.sums as that qkv takes them (nvfp4_linear_deferred_norm). input_deferred
// (FP4LLM_NORM_DEFERRED=router): the layer's own input norm deferred too, by o_proj
// (nvfp4_linear_add_deferred_norm): h holds x times input_norm, and the router and the experts'
// gate/up scale by 1 / rms from input_deferred's sums (the same buffer as deferred's: the down
// projection writes it once the gate/up has read it).
void moe_experts_deferred_norm(const DeviceMoe& moe, __nv_bfloat16* h, float* x, const NormParams& norm,
                               const float* input_norm, const float* next_w, const DeferredNorm& deferred,
                               MoeWorkspace& ws, cudaStream_t stream, const DeviceNvfp4Linear* next_qkv,
                               const DeferredNorm* input_deferred = nullptr);

// Expert parallelism: partial[tokens, hidden] = this GPU's experts' share of MoE(h), to be summed
// over the GPUs before the residual add.
void moe_mlp_partial(const DeviceMoe& moe, const __nv_bfloat16* h, int64_t tokens, float* partial, MoeWorkspace& ws,
                     cudaStream_t stream);

}  // namespace fp4llm::cuda
