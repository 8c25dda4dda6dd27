#include "backend/cuda/moe_layer.hpp"

#include <algorithm>

#include "backend/cuda/l2_ahead.hpp"
#include "util/error.hpp"
#include "util/tuning_knob.hpp"

namespace fp4llm::cuda {

RouterShape router_shape(const ModelConfig& c, int64_t first_expert, int64_t local_experts) {
  return {c.hidden_size, c.num_experts, c.experts_per_token, c.norm_topk_prob, first_expert, local_experts};
}

void MoeWorkspace::ensure(int64_t wanted, const RouterShape& s, int64_t intermediate) {
  wanted = std::min(wanted, kMoeTokensPerPass);
  if (!active_experts.size()) active_experts = DeviceBuffer<unsigned long long>::zeroed(1);
  if (wanted <= tokens) return;
  const size_t routed = size_t(wanted * s.top_k), groups = size_t(std::min<int64_t>(s.local(), wanted * s.top_k));
  topk_expert = DeviceBuffer<int32_t>(routed);
  topk_weight = DeviceBuffer<float>(routed);
  logits = DeviceBuffer<float>(size_t(wanted * s.experts));
  group_expert = DeviceBuffer<int32_t>(groups);
  group_offset = DeviceBuffer<int32_t>(groups + 1);
  num_groups = DeviceBuffer<int32_t>(1);
  row_token = DeviceBuffer<int32_t>(routed);
  row_slot = DeviceBuffer<int32_t>(routed);
  act = DeviceBuffer<__nv_bfloat16>(routed * size_t(intermediate));
  expert_out = DeviceBuffer<float>(routed * size_t(s.hidden));
  tokens = wanted;
}

uint64_t MoeWorkspace::bytes() const {
  return logits.bytes() + topk_expert.bytes() + group_expert.bytes() + group_offset.bytes() + num_groups.bytes() + row_token.bytes() +
         row_slot.bytes() + topk_weight.bytes() + expert_out.bytes() + act.bytes() + active_experts.bytes();
}

Routing MoeWorkspace::routing() {
  return {logits.data(),       topk_expert.data(), topk_weight.data(), group_expert.data(), group_offset.data(),
          num_groups.data(),   row_token.data(),   row_slot.data(),    active_experts.data()};
}

namespace {

// Steps of up to kRoutedInExpertsTokens tokens skip the selection kernel, the experts' gate/up
// product routing them itself (nvfp4_experts_gated_routed, always on the direct kernel): 1.7%
// faster at batch 1 on the H200 (2026-12-05, Qwen3-30B-A3B). FP4LLM_ROUTING_IN_EXPERTS=0 keeps
// the selection kernel, to compare.
constexpr int64_t kRoutedInExpertsTokens = 2;
bool routing_in_experts_requested() {
  static const bool on = knob_on("FP4LLM_ROUTING_IN_EXPERTS");
  return on;
}

// One routing pass of `n` tokens: route, group, the gate/up grouped GEMV; returns the rows for
// the down projection (the chosen experts' rows then go to ws.expert_out, weights in ws.topk_weight).
// With `normed` (up to kMaxNormedRouterTokens tokens, checked by the routing), the router kernel
// makes h (normed->h_out) from the residual stream first; with `deferred` h is the stream times
// the norm's gains, and the router and the gate/up scale by each token's 1 / rms.
ExpertRows route_and_gate(const DeviceMoe& m, const __nv_bfloat16* h, int64_t n, MoeWorkspace& ws, cudaStream_t stream,
                          const NormedRouterInput* normed = nullptr, const DeferredNorm* deferred = nullptr) {
  const RouterShape& s = m.shape;
  const bool route_in_experts = routing_in_experts_requested() && n <= kRoutedInExpertsTokens &&
                                routing_in_experts_supported(n, s);
  if (route_in_experts) moe_router_logits(m.router.data(), h, normed, n, s, ws.routing(), stream, deferred);
  else if (normed) moe_route_normed(m.router.data(), *normed, n, s, ws.routing(), stream);
  else moe_route(m.router.data(), h, n, s, ws.routing(), stream, deferred);
  ExpertRows rows;
  rows.group_expert = ws.group_expert.data();
  rows.group_offset = ws.group_offset.data();
  rows.num_groups = ws.num_groups.data();
  rows.row_token = ws.row_token.data();
  rows.row_slot = ws.row_slot.data();
  rows.max_groups = std::min(s.local(), n * s.top_k);
  rows.max_rows = n;
  static const bool down_ahead = l2_ahead_requested("down");
  if (route_in_experts)
    nvfp4_experts_gated_routed(m.gate_up, h, n, s, ws.routing(), /*gelu=*/false, ws.act.data(), stream,
                               down_ahead ? &m.down : nullptr, deferred);
  else nvfp4_experts_gated(m.gate_up, h, rows, /*gelu=*/false, ws.act.data(), stream, deferred);
  return rows;
}

void check_workspace(const MoeWorkspace& ws, int64_t tokens) {
  if (std::min(tokens, kMoeTokensPerPass) > ws.tokens) fail("MoE workspace sized for {} tokens, {} asked", ws.tokens, tokens);
}

}  // namespace

void moe_mlp(const DeviceMoe& m, __nv_bfloat16* h, int64_t tokens, float* x, const float* next_w,
             const NormParams& norm, MoeWorkspace& ws, cudaStream_t stream, const float* input_norm) {
  check_workspace(ws, tokens);
  const int64_t H = m.shape.hidden;
  for (int64_t start = 0; start < tokens; start += kMoeTokensPerPass) {
    const int64_t n = std::min(kMoeTokensPerPass, tokens - start);
    const NormedRouterInput normed{x + start * H, input_norm, norm.eps, norm.one_plus, h + start * H};
    const ExpertRows rows = route_and_gate(m, h + start * H, n, ws, stream, input_norm ? &normed : nullptr);
    nvfp4_experts_down_combine(m.down, ws.act.data(), rows, ws.expert_out.data(),
                               {x + start * H, ws.topk_weight.data(), m.shape.top_k, next_w, norm.eps, norm.one_plus,
                                h + start * H},
                               stream);
  }
}

void moe_experts_for_next_product(const DeviceMoe& m, __nv_bfloat16* h, int64_t tokens, const float* x,
                                  const NormParams& norm, const float* input_norm, MoeWorkspace& ws, cudaStream_t stream,
                                  const DeviceNvfp4Linear* next_qkv) {
  check_workspace(ws, tokens);
  const NormedRouterInput normed{x, input_norm, norm.eps, norm.one_plus, h};
  const ExpertRows rows = route_and_gate(m, h, tokens, ws, stream, &normed);
  nvfp4_experts_down(m.down, ws.act.data(), rows, ws.expert_out.data(), stream, next_qkv);
}

void moe_experts_deferred_norm(const DeviceMoe& m, __nv_bfloat16* h, float* x, const NormParams& norm,
                               const float* input_norm, const float* next_w, const DeferredNorm& deferred,
                               MoeWorkspace& ws, cudaStream_t stream, const DeviceNvfp4Linear* next_qkv,
                               const DeferredNorm* input_deferred) {
  check_workspace(ws, 1);
  const NormedRouterInput normed{x, input_norm, norm.eps, norm.one_plus, h};
  const ExpertRows rows = input_deferred ? route_and_gate(m, h, 1, ws, stream, nullptr, input_deferred)
                                         : route_and_gate(m, h, 1, ws, stream, &normed);
  // h is the gate/up's input until the down projection's wait for it is over; then its output.
  nvfp4_experts_down_deferred_norm(m.down, ws.act.data(), rows, {x, ws.topk_weight.data(), m.shape.top_k}, next_w, deferred,
                                   h, stream, next_qkv);
}

void moe_mlp_partial(const DeviceMoe& m, const __nv_bfloat16* h, int64_t tokens, float* partial, MoeWorkspace& ws,
                     cudaStream_t stream) {
  check_workspace(ws, tokens);
  const int64_t H = m.shape.hidden;
  for (int64_t start = 0; start < tokens; start += kMoeTokensPerPass) {
    const int64_t n = std::min(kMoeTokensPerPass, tokens - start);
    const ExpertRows rows = route_and_gate(m, h + start * H, n, ws, stream);
    nvfp4_experts_down(m.down, ws.act.data(), rows, ws.expert_out.data(), stream);
    weighted_sum({ws.expert_out.data(), ws.topk_weight.data(), m.shape.top_k}, n, H, partial + start * H, stream);
  }
}

}  // namespace fp4llm::cuda
