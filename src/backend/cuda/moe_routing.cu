#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/deferred_norm.cuh"
#include "backend/cuda/dependent_launch.cuh"
#include "backend/cuda/moe_routing.hpp"
#include "backend/cuda/moe_select.cuh"
#include "backend/cuda/rms_norm.cuh"

namespace fp4llm::cuda {

namespace {

constexpr int kLogitWarps = 8;   // experts per block, one per warp
constexpr int kLogitTokens = 8;  // tokens per block: more blocks, shorter dependent chains
// The norm prologue's tokens fit one token block (grid y = 1): one block per expert group stores h.
static_assert(kMaxNormedRouterTokens <= kLogitTokens);
__device__ __forceinline__ float dot8(uint4 a, uint4 b, float sum) {
  const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* b2 = reinterpret_cast<const __nv_bfloat162*>(&b);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 fa = __bfloat1622float2(a2[j]), fb = __bfloat1622float2(b2[j]);
    sum = fmaf(fa.x, fb.x, fmaf(fa.y, fb.y, sum));
  }
  return sum;
}

// Router logits, written against latency (a decode step routes a handful of tokens): each warp
// holds its expert's row in registers (V 16-byte pieces per lane, all loads in flight at once)
// and takes the dot product with each of the block's tokens (blockIdx.y picks them). kNormIn: h
// is first made by the block itself from the residual stream (rms_norm.cuh, up to
// kMaxNormedRouterTokens tokens) into shared memory, and the first block also stores it for the
// experts' gate/up product. deferred.sums (FP4LLM_NORM_DEFERRED=router): h is the stream times the
// gains, and each token's logits are scaled by its 1 / rms from those partial sums.
template <int V, bool kNormIn>
__global__ void __launch_bounds__(kLogitWarps * 32) router_logits_kernel(const uint4* router, const uint4* h, int tokens,
                                                                         int vecs, int experts, float* logits,
                                                                         NormSource norm, uint4* h_out,
                                                                         DeferredNorm deferred) {
  let_dependents_start();
  const int lane = threadIdx.x & 31, expert = blockIdx.x * kLogitWarps + (threadIdx.x >> 5);
  uint4 w[V];  // the expert's row, requested before the wait: it is no kernel's output
#pragma unroll
  for (int v = 0; v < V; ++v)
    w[v] = expert < experts && lane + 32 * v < vecs ? __ldg(router + size_t(expert) * vecs + lane + 32 * v)
                                                    : make_uint4(0, 0, 0, 0);
  wait_for_producer();  // launched early (FP4LLM_PDL=all): h (or the residual) is the previous kernel's
  if constexpr (kNormIn) {
    __shared__ __align__(16) __nv_bfloat16 normed[kMaxNormedRouterTokens][kMaxRouterHidden];
    block_normed_rows<kMaxNormedRouterTokens, kLogitWarps * 32>(norm, tokens, vecs * 8, &normed[0][0], kMaxRouterHidden);
    if (blockIdx.x == 0)
      for (int i = int(threadIdx.x); i < tokens * vecs; i += kLogitWarps * 32)
        h_out[i] = reinterpret_cast<const uint4*>(&normed[i / vecs][0])[i % vecs];
    h = reinterpret_cast<const uint4*>(&normed[0][0]);
  }
  const int h_stride = kNormIn ? int(kMaxRouterHidden / 8) : vecs;  // uint4 per row of h
  if (expert >= experts) return;
  const int first = blockIdx.y * kLogitTokens, last = min(tokens, first + kLogitTokens);
#pragma unroll 2
  for (int t = first; t < last; ++t) {
    float sum = 0;
#pragma unroll
    for (int v = 0; v < V; ++v)
      if (lane + 32 * v < vecs) {
        const uint4* hv = h + size_t(t) * h_stride + lane + 32 * v;
        sum = dot8(w[v], kNormIn ? *hv : __ldg(hv), sum);
      }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (!kNormIn && deferred.sums) sum *= deferred_inv_rms(deferred.sums, int(deferred.parts), t, vecs * 8, deferred.eps, lane);
    if (lane == 0) logits[size_t(t) * experts + expert] = sum;
  }
}

// Warp 0: lane L takes a run of consecutive experts; exclusive scans across lanes give each run
// its first row and first group, so groups come out in expert order without a serial pass.
__device__ void lay_out_groups(const int* count, int* cursor, int experts, int lane, const Routing& out) {
  const int per_lane = (experts + 31) / 32, first = lane * per_lane;
  int rows = 0, used = 0;
  for (int e = first; e < min(experts, first + per_lane); ++e) rows += count[e], used += count[e] > 0;
  int rows_before = rows, used_before = used;  // inclusive scans, then made exclusive
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int r = __shfl_up_sync(0xffffffffu, rows_before, o), u = __shfl_up_sync(0xffffffffu, used_before, o);
    if (lane >= o) rows_before += r, used_before += u;
  }
  int offset = rows_before - rows, group = used_before - used;
  for (int e = first; e < min(experts, first + per_lane); ++e) {
    cursor[e] = offset;
    if (count[e] == 0) continue;
    out.group_expert[group] = e;
    out.group_offset[group++] = offset;
    offset += count[e];
  }
  if (lane == 31) {
    out.group_offset[group] = offset;
    *out.num_groups = group;
    if (out.active) atomicAdd(out.active, (unsigned long long)group);
  }
}

// One block of any size: each warp routes tokens (softmax, top-k), counting choices per expert;
// then the groups are laid out in expert order and the rows scattered. Within a group the order
// of rows is that of the atomic cursor; each row's product does not depend on its position, so
// the results do not either.
__device__ void select_and_group(int tokens, const RouterShape& s, const Routing& out, int* count, int* cursor) {
  const int experts = int(s.experts), top_k = int(s.top_k), lane = threadIdx.x & 31;
  const int first = int(s.first_expert), local = int(s.local());
  for (int e = threadIdx.x; e < local; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int t = threadIdx.x >> 5; t < tokens; t += blockDim.x >> 5) {
    int expert = 0;
    float prob = 0;
    const float chosen = select_top_k(out.logits + size_t(t) * experts, experts, top_k, lane, expert, prob);
    if (lane < top_k) {
      const bool mine = expert >= first && expert < first + local;
      out.topk_expert[t * top_k + lane] = expert;
      out.topk_weight[t * top_k + lane] = mine ? (s.norm_topk_prob ? prob / chosen : prob) : 0.0f;
      if (mine) atomicAdd(&count[expert - first], 1);
    }
  }
  __syncthreads();
  if (threadIdx.x < 32) lay_out_groups(count, cursor, local, lane, out);
  __syncthreads();
  for (int i = threadIdx.x; i < tokens * top_k; i += blockDim.x) {
    const int e = out.topk_expert[i] - first;
    if (e < 0 || e >= local) continue;  // another GPU's expert
    const int at = atomicAdd(&cursor[e], 1);
    out.row_token[at] = i / top_k;
    out.row_slot[at] = i;
  }
}

__global__ void __launch_bounds__(1024) select_and_group_kernel(int tokens, RouterShape s, Routing out) {
  let_dependents_start();  // the next kernel may be scheduled now (dependent_launch.cuh)
  wait_for_producer();     // launched early (FP4LLM_PDL=all): the inputs are the previous kernel's
  __shared__ int count[kMaxExperts], cursor[kMaxExperts];  // by local expert
  select_and_group(tokens, s, out, count, cursor);
}

template <int V>
void launch_route(const __nv_bfloat16* router, const __nv_bfloat16* h, int64_t tokens, const RouterShape& s,
                  const Routing& out, const NormedRouterInput* normed, const DeferredNorm& deferred, bool select,
                  cudaStream_t stream) {
  const dim3 grid(unsigned((s.experts + kLogitWarps - 1) / kLogitWarps), unsigned((tokens + kLogitTokens - 1) / kLogitTokens));
  const auto* w = reinterpret_cast<const uint4*>(router);
  if (normed)
    launch_dependent(early_launch_all(), router_logits_kernel<V, true>, grid, dim3(kLogitWarps * 32), 0, stream, w,
                     static_cast<const uint4*>(nullptr), int(tokens), int(s.hidden / 8), int(s.experts), out.logits,
                     NormSource{normed->residual, normed->weight, normed->eps, normed->one_plus},
                     reinterpret_cast<uint4*>(normed->h_out), DeferredNorm{});
  else
    launch_dependent(early_launch_all(), router_logits_kernel<V, false>, grid, dim3(kLogitWarps * 32), 0, stream, w,
                     reinterpret_cast<const uint4*>(h), int(tokens), int(s.hidden / 8), int(s.experts), out.logits,
                     NormSource{}, static_cast<uint4*>(nullptr), deferred);
  if (select) launch_dependent(early_launch_all(), select_and_group_kernel, dim3(1), dim3(1024), 0, stream, int(tokens), s, out);
}

void route(const __nv_bfloat16* router, const __nv_bfloat16* h, int64_t tokens, const RouterShape& s, const Routing& out,
           const NormedRouterInput* normed, bool select, cudaStream_t stream, const DeferredNorm* deferred_in = nullptr) {
  check_router_shape(s);
  if (tokens <= 0) return;
  const DeferredNorm deferred = deferred_in ? *deferred_in : DeferredNorm{};
  if (deferred_in && (normed || !deferred.sums || deferred.parts != deferred_norm_parts(s.hidden)))
    throw_error("MoE routing with a deferred norm: the partial sums must hold one per 16 of the " + std::to_string(s.hidden) +
                " features (given " + std::to_string(deferred.parts) + "), and the router not normalise h itself");
  if (normed && tokens > kMaxNormedRouterTokens)
    throw_error("MoE routing with its input norm: " + std::to_string(tokens) + " tokens (at most " +
                std::to_string(kMaxNormedRouterTokens) + ")");
  const int64_t per_lane = (s.hidden / 8 + 31) / 32;
  if (per_lane <= 1) launch_route<1>(router, h, tokens, s, out, normed, deferred, select, stream);
  else if (per_lane <= 2) launch_route<2>(router, h, tokens, s, out, normed, deferred, select, stream);
  else if (per_lane <= 4) launch_route<4>(router, h, tokens, s, out, normed, deferred, select, stream);
  else if (per_lane <= 8) launch_route<8>(router, h, tokens, s, out, normed, deferred, select, stream);
  else launch_route<16>(router, h, tokens, s, out, normed, deferred, select, stream);
}

}  // namespace

void check_router_shape(const RouterShape& s) {
  if (s.experts < 1 || s.experts > kMaxExperts || s.top_k < 1 || s.top_k > std::min(kMaxTopK, s.experts) ||
      s.first_expert < 0 || s.local() < 1 || s.first_expert + s.local() > s.experts)
    throw_error("MoE routing: " + std::to_string(s.experts) + " experts with top-" + std::to_string(s.top_k) +
                " is not supported (at most " + std::to_string(kMaxExperts) + " experts, top-k 1.." +
                std::to_string(kMaxTopK) + ")");
  if (s.hidden % 8 != 0 || s.hidden > kMaxRouterHidden)
    throw_error("MoE routing: hidden size " + std::to_string(s.hidden) + " is not a multiple of 8 up to " +
                std::to_string(kMaxRouterHidden));
}

void moe_route(const __nv_bfloat16* router, const __nv_bfloat16* h, int64_t tokens, const RouterShape& s,
               const Routing& out, cudaStream_t stream, const DeferredNorm* deferred) {
  route(router, h, tokens, s, out, nullptr, true, stream, deferred);
}

void moe_route_normed(const __nv_bfloat16* router, const NormedRouterInput& in, int64_t tokens, const RouterShape& s,
                      const Routing& out, cudaStream_t stream) {
  route(router, nullptr, tokens, s, out, &in, true, stream);
}

void moe_router_logits(const __nv_bfloat16* router, const __nv_bfloat16* h, const NormedRouterInput* normed,
                       int64_t tokens, const RouterShape& s, const Routing& out, cudaStream_t stream,
                       const DeferredNorm* deferred) {
  route(router, h, tokens, s, out, normed, false, stream, deferred);
}

}  // namespace fp4llm::cuda
