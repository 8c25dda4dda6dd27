#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/launch_grid.hpp"
#include "backend/cuda/moe_routing.hpp"

namespace fp4llm::cuda {

namespace {

constexpr int kRouteThreads = 256;

// Dot product of a BF16 router row with a BF16 activation row, 8 values per 16-byte load where
// the row allows it, the rest one at a time; every lane returns the sum.
__device__ float row_dot(const __nv_bfloat16* w, const __nv_bfloat16* x, int n, int lane) {
  float sum = 0;
  int done = 0;
  if ((n & 7) == 0 && ((reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(x)) & 15) == 0) {
    const uint4* wv = reinterpret_cast<const uint4*>(w);
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    for (int i = lane; i < n / 8; i += 32) {
      const uint4 a = __ldg(wv + i), b = __ldg(xv + i);
      const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&a);
      const __nv_bfloat162* b2 = reinterpret_cast<const __nv_bfloat162*>(&b);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 fa = __bfloat1622float2(a2[j]), fb = __bfloat1622float2(b2[j]);
        sum = fmaf(fa.x, fb.x, fmaf(fa.y, fb.y, sum));
      }
    }
    done = n;
  }
  for (int i = done + lane; i < n; i += 32) sum = fmaf(__bfloat162float(w[i]), __bfloat162float(x[i]), sum);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  return sum;
}

// The larger of two (probability, expert) candidates; the lower expert on equal probability.
__device__ __forceinline__ void keep_better(float& p, int& e, float op, int oe) {
  if (op > p || (op == p && oe < e)) p = op, e = oe;
}

// One block per token: logits (a warp per expert at a time), then warp 0 does the softmax and
// the top-k selection. Bound: the router rows (hidden x experts x 2 bytes), read from L2.
__global__ void __launch_bounds__(kRouteThreads) moe_route_kernel(const __nv_bfloat16* router, const __nv_bfloat16* h,
                                                                  RouterShape s, int32_t* topk_expert, float* topk_weight) {
  __shared__ float prob[kMaxExperts];
  const int token = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int E = int(s.experts), H = int(s.hidden), K = int(s.top_k);
  const __nv_bfloat16* x = h + size_t(token) * H;
  for (int e = warp; e < E; e += kRouteThreads / 32) {
    const float logit = row_dot(router + size_t(e) * H, x, H, lane);
    if (lane == 0) prob[e] = logit;
  }
  __syncthreads();
  if (warp != 0) return;
  float m = -INFINITY;
  for (int e = lane; e < E; e += 32) m = fmaxf(m, prob[e]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  float sum = 0;
  for (int e = lane; e < E; e += 32) sum += (prob[e] = expf(prob[e] - m));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  __syncwarp();
  float chosen_sum = 0, mine = 0;  // lane c keeps choice c's probability
  int mine_expert = 0;
  for (int c = 0; c < K; ++c) {
    float p = -1.0f;
    int e = E;
    for (int i = lane; i < E; i += 32) keep_better(p, e, prob[i], i);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) keep_better(p, e, __shfl_xor_sync(0xffffffffu, p, o), __shfl_xor_sync(0xffffffffu, e, o));
    p /= sum;
    chosen_sum += p;
    if (lane == c) mine = p, mine_expert = e;
    __syncwarp();
    if (lane == 0) prob[e] = -2.0f;  // taken (probabilities are >= 0)
    __syncwarp();
  }
  if (lane < K) {
    topk_expert[size_t(token) * K + lane] = mine_expert;
    topk_weight[size_t(token) * K + lane] = s.norm_topk_prob ? mine / chosen_sum : mine;
  }
}

// One block: count rows per expert, lay the groups out in expert order, scatter the rows.
// Within a group the order of rows is that of the atomic cursor; each row's product does not
// depend on its position, so results do not either.
__global__ void __launch_bounds__(1024) moe_group_kernel(const int32_t* topk_expert, int routed, int top_k, int experts,
                                                          ExpertGrouping out) {
  __shared__ int count[kMaxExperts], cursor[kMaxExperts];
  for (int e = threadIdx.x; e < experts; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < routed; i += blockDim.x) atomicAdd(&count[topk_expert[i]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int groups = 0, offset = 0;
    for (int e = 0; e < experts; ++e) {
      cursor[e] = offset;
      if (count[e] == 0) continue;
      out.group_expert[groups] = e;
      out.group_offset[groups++] = offset;
      offset += count[e];
    }
    out.group_offset[groups] = offset;
    *out.num_groups = groups;
    if (out.active) atomicAdd(out.active, (unsigned long long)groups);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < routed; i += blockDim.x) {
    const int at = atomicAdd(&cursor[topk_expert[i]], 1);
    out.row_token[at] = i / top_k;
    out.row_slot[at] = i;
  }
}

__global__ void moe_combine_kernel(const float* expert_out, const float* topk_weight, int64_t tokens, int top_k,
                                   int64_t hidden, float* x) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(tokens * hidden);
       i += size_t(gridDim.x) * blockDim.x) {
    const size_t token = i / hidden, d = i % hidden;
    float sum = 0;
    for (int c = 0; c < top_k; ++c)
      sum += topk_weight[token * top_k + c] * expert_out[(token * top_k + c) * hidden + d];
    x[i] += sum;
  }
}

}  // namespace

void moe_route(const __nv_bfloat16* router, const __nv_bfloat16* h, int64_t tokens, const RouterShape& shape,
               int32_t* topk_expert, float* topk_weight, cudaStream_t stream) {
  if (shape.experts < 1 || shape.experts > kMaxExperts || shape.top_k < 1 || shape.top_k > std::min(kMaxTopK, shape.experts))
    throw_error("MoE routing: " + std::to_string(shape.experts) + " experts with top-" + std::to_string(shape.top_k) +
                " is not supported (at most " + std::to_string(kMaxExperts) + " experts, top-k 1.." +
                std::to_string(kMaxTopK) + ")");
  if (tokens <= 0) return;
  moe_route_kernel<<<unsigned(tokens), kRouteThreads, 0, stream>>>(router, h, shape, topk_expert, topk_weight);
  FP4LLM_CUDA_LAUNCHED();
}

void moe_group(const int32_t* topk_expert, int64_t tokens, int64_t top_k, int64_t experts, const ExpertGrouping& out,
               cudaStream_t stream) {
  if (experts > kMaxExperts) throw_error("MoE grouping: more than " + std::to_string(kMaxExperts) + " experts");
  if (tokens <= 0) return;
  moe_group_kernel<<<1, 1024, 0, stream>>>(topk_expert, int(tokens * top_k), int(top_k), int(experts), out);
  FP4LLM_CUDA_LAUNCHED();
}

void moe_combine(const float* expert_out, const float* topk_weight, int64_t tokens, int64_t top_k, int64_t hidden,
                 float* x, cudaStream_t stream) {
  if (tokens <= 0) return;
  moe_combine_kernel<<<grid_for(tokens * hidden, 256), 256, 0, stream>>>(expert_out, topk_weight, tokens, int(top_k),
                                                                         hidden, x);
  FP4LLM_CUDA_LAUNCHED();
}

}  // namespace fp4llm::cuda
