// y = x W^T for NVFP4 weights on the GPU. Rows of x (tokens) up to 64 go through the
// tensor-core kernel that reads each weight byte once; more rows dequantize the weight to BF16
// in a scratch buffer and call cuBLAS (compute-bound there, so the extra pass is cheap).
// The result can be stored, added to a float32 residual stream, or (gated tile layout) turned
// into act(gate) * up in BF16, so that decode needs no separate pass for either.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <memory>

#include "backend/cuda/deferred_norm.hpp"
#include "backend/cuda/device_buffer.hpp"
#include "backend/cuda/fp8_gemm.hpp"
#include "backend/cuda/layer_kernels.hpp"
#include "backend/cuda/moe_routing.hpp"
#include "backend/cuda/nvfp4_tiles.hpp"

namespace fp4llm::cuda {

// One matrix, or (experts > 1) the same-shaped matrices of all experts of an MoE layer stacked
// expert after expert in each array.
struct DeviceNvfp4Linear {
  int64_t out_features = 0, in_features = 0, row_tiles = 0, k_chunks = 0;
  int64_t experts = 1;
  bool gated = false;
  DeviceBuffer<uint8_t> packed;
  DeviceBuffer<uint16_t> scales;
  DeviceBuffer<float> tile_scales;
  uint64_t bytes() const { return packed.bytes() + scales.bytes() + tile_scales.bytes(); }
};

DeviceNvfp4Linear upload_nvfp4(const Nvfp4Tiles& tiles);

// Room for `experts` matrices shaped like `first`, which goes in as expert 0; the others follow
// through upload_expert (one expert at a time: no host copy of the whole layer).
DeviceNvfp4Linear allocate_experts(const Nvfp4Tiles& first, int64_t experts);
void upload_expert(DeviceNvfp4Linear& stacked, int64_t expert, const Nvfp4Tiles& tiles);

// FP4LLM_WGMMA_PIPELINE=layout-written: an input that the kernel writing it (the norm after a
// residual product, a gated product's epilogue) also wrote in the pipelined GEMV's x layout.
struct LaidOutInput {
  const void* x = nullptr;
  int64_t rows = 0;
  const uint8_t* laid_out = nullptr;
};

// Scratch the linear kernels need, sized once for the largest layer (no allocation inside a
// step, so steps can be captured in CUDA graphs).
struct LinearWorkspace {
  DeviceBuffer<__nv_bfloat16> dequantized;    // prefill: one weight matrix in BF16 (or E4M3: fp8)
  std::unique_ptr<Fp8Gemm> fp8;               // FP4LLM_FP8_PREFILL=1: made on first use
  cublasHandle_t cublas = nullptr;
  // The next product reading `next_input.x` takes its laid-out copy; any product forgets it first.
  LaidOutInput next_input;
  // The model's products of 33-64 rows take the pipelined GEMV where the default kernels would run
  // no clusters, their x laid out by its writers (pipelined_gemv_default; FP4LLM_WGMMA_PIPELINE
  // =layout-unclustered sets it for every model).
  bool pipeline_unclustered = false;
};

// Whether a model's decode products take the pipelined GEMV where unclustered, on sm_90: with
// FP4LLM_WGMMA_PIPELINE=layout-unclustered every model's, with it unset dense models' (measured,
// H100, 2026-12-07, same call, batch 64: Qwen3-8B 8,467 -> 8,617-8,641 tok/s, Gemma3-27B 2,569 ->
// 3,278; Qwen3-30B-A3B 5,420 -> 5,369, so not MoE models).
bool pipelined_gemv_default(bool moe);

constexpr int64_t kMaxDecodeRows = 64;  // rows handled by the tensor-core GEMV kernel

// Elements of LinearWorkspace::dequantized that `w`'s prefill product (more than kMaxDecodeRows
// rows) needs: BF16 slices of whole tiles up to 32 M values (64 MB), or with FP4LLM_FP8_PREFILL=1
// the whole matrix in E4M3 (half as many BF16 elements).
int64_t prefill_scratch_elements(const DeviceNvfp4Linear& w);

enum class LinearOutput { Store, Add };

// Allocates the device scratch a decode GEMV variant needs (FP4LLM_WGMMA_PIPELINE=layout's laid-out
// x) on the current device; call before capturing a graph (a first use otherwise allocates).
void prepare_gemv_scratch(const LinearWorkspace& ws);
// Bytes of that scratch allocated on the current device (for the memory report).
uint64_t gemv_scratch_bytes();

// x: [rows, in_features] BF16; y: [rows, out_features] float32, overwritten or added to.
void nvfp4_linear(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* y,
                  LinearWorkspace& ws, cudaStream_t stream, LinearOutput mode = LinearOutput::Store);

// The residual stream's update after a projection and its next RMSNorm (the next layer's input).
struct ResidualNorm {
  float* residual = nullptr;       // [rows][n] float32, updated in place
  const float* post_w = nullptr;   // Gemma3: the product is normalised with this before the add
  const float* next_w = nullptr;   // [n]
  float eps = 1e-6f;
  bool one_plus = false;           // Gemma3's (1 + w) gains
  __nv_bfloat16* normed = nullptr; // [rows][n] rmsnorm(residual) * gain(next_w)
  // The next product reads `normed` (FP4LLM_WGMMA_PIPELINE=layout-written: the norm then also
  // writes it in the pipelined GEMV's x layout for that product).
  bool next_reads_normed = false;
};

// residual += post_w ? rmsnorm(x W^T) * gain(post_w) : x W^T, then normed as above; `product`
// ([rows][n] float32) holds x W^T when post_w is set. nvfp4_linear, then add_and_norm
// (layer_kernels.hpp). Doing the add and norm in the GEMV's last block instead was measured
// slower (H200, 2026-12-05: 266 against 361 tok/s with the fused RoPE epilogue on too; docs/PERFORMANCE.md).
void nvfp4_linear_residual(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* product,
                           const ResidualNorm& r, LinearWorkspace& ws, cudaStream_t stream);

// The RMSNorm between two decode products split between them (FP4LLM_NORM_DEFERRED,
// gemv_deferred_norm.cuh): the first adds its product to the residual stream and stores the
// updated rows times the next norm's gains in BF16 (`scaled`) with partial sums of squares; the
// second takes `scaled` as its x and scales each token's result by 1 / rms from those sums. Up to
// kMaxDeferredNormRows rows (the direct GEMV, whose blocks hold whole tiles); Qwen3's gains w (not
// Gemma3's 1 + w).
constexpr int64_t kMaxDeferredNormRows = 16;
int64_t deferred_norm_parts(const DeviceNvfp4Linear& first);
bool deferred_norm_supported(int64_t rows);
// residual += x W^T; scaled = residual * gain in BF16; norm.sums its partial sums of squares.
void nvfp4_linear_add_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, float* residual,
                                    const float* gain, const DeferredNorm& norm, __nv_bfloat16* scaled,
                                    cudaStream_t stream);
// nvfp4_linear (stored) and nvfp4_gated of `scaled`, each token's sums times its 1 / rms.
void nvfp4_linear_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* scaled, int64_t rows, float* y,
                                const DeferredNorm& norm, cudaStream_t stream);
void nvfp4_gated_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* scaled, int64_t rows, bool gelu,
                               __nv_bfloat16* out, const DeferredNorm& norm, cudaStream_t stream);

// A product's input as an RMSNorm gives it, taken by the product itself: x = rmsnorm(residual
// row) * gain(weight) in BF16, gain w (Qwen3) or 1 + w (Gemma3). With delta (Gemma3's sandwich
// norms) the residual row is first updated: residual + rmsnorm(delta row) * gain(delta_w), stored
// by the product's first block to `store` (not `residual`, which the other blocks still read).
struct NormedInput {
  const float* residual = nullptr;  // [rows][in_features] float32
  const float* weight = nullptr;    // [in_features]
  float eps = 1e-6f;
  bool one_plus = false;
  const float* delta = nullptr;     // [rows][in_features] float32: the last product
  const float* delta_w = nullptr;   // [in_features]
  float* store = nullptr;           // [rows][in_features]: the updated residual rows
  // MoE: delta holds delta_count rows per row (the chosen experts' outputs), added to the stream as
  // their sum weighted by delta_weights [rows][delta_count] (no delta_w), as the combine kernel does.
  const float* delta_weights = nullptr;
  int64_t delta_count = 0;
};
constexpr int64_t kMaxNormedRows = 2;

// Whether the two products below take `rows` rows of `in_features` features: up to
// kMaxNormedRows rows, a multiple of 16 features, their BF16 copies within 48 KB.
bool normed_input_supported(int64_t rows, int64_t in_features);

// nvfp4_linear and nvfp4_gated (up to kMaxNormedRows rows) with every GEMV block normalising its
// input rows itself from the float32 residual stream, instead of reading the rows a norm kernel
// wrote before it (one launch and one grid-wide wait fewer; gemv_norm_prologue.cuh). Throws
// Error where normed_input_supported is false. The backend uses them by default for MoE models
// (measured faster there, slower on Qwen3-8B; cuda_backend.cpp's norm_prologue).
void nvfp4_linear_normed(const DeviceNvfp4Linear& w, const NormedInput& x, int64_t rows, float* y, cudaStream_t stream,
                         LinearOutput mode = LinearOutput::Store);
void nvfp4_gated_normed(const DeviceNvfp4Linear& w, const NormedInput& x, int64_t rows, bool gelu, __nv_bfloat16* out,
                        cudaStream_t stream);

// Gated tiles (make_gated_nvfp4_tiles): out[rows, out_features / 2] = act(x Wg^T) * (x Wu^T),
// act SiLU or GELU-tanh. `scratch` ([rows, out_features] float32) serves rows above 64.
void nvfp4_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t rows, bool gelu,
                 __nv_bfloat16* out, float* scratch, LinearWorkspace& ws, cudaStream_t stream);

// Rows of an MoE layer grouped by expert (moe_routing.hpp writes them on the GPU): routed row r
// is one (token, choice) pair; group g holds rows [group_offset[g], group_offset[g + 1]), all
// routed to expert group_expert[g]. Only the first *num_groups groups exist.
struct ExpertRows {
  const int32_t* group_expert = nullptr;  // [max_groups]
  const int32_t* group_offset = nullptr;  // [max_groups + 1]
  const int32_t* num_groups = nullptr;    // one value
  const int32_t* row_token = nullptr;     // routed row -> token
  const int32_t* row_slot = nullptr;      // routed row -> token * top_k + choice
  int64_t max_groups = 0;                 // grid bound: min(experts, routed rows)
  int64_t max_rows = 0;                   // most rows one group can hold (the tokens)
};

// Expert gate/up (gated tiles): out[r] = act(x[row_token[r]] Wg_e^T) * (x[row_token[r]] Wu_e^T)
// for every routed row r, e its group's expert. Reads only the experts that have rows. deferred
// (FP4LLM_NORM_DEFERRED=router; up to 8 tokens): x is the stream times the
// norm's gains, each token's sums scaled by its 1 / rms before the activation.
void nvfp4_experts_gated(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, const ExpertRows& rows, bool gelu,
                         __nv_bfloat16* out, cudaStream_t stream, const DeferredNorm* deferred = nullptr);

// The same for a step of one or two tokens routed by the product itself: every block chooses the
// experts from the router's logits as the selection kernel would (moe_select.cuh), so that kernel
// does not run, and the first block stores the routing in `out` (rows' tables and the chosen
// experts' weights) for the down projection and the combine. Needs tokens * top_k <= 32 and every
// expert local (routing_in_experts_supported). l2_down: the experts' down weights, whose share of
// its expert each block asks L2 for once routed (FP4LLM_L2_AHEAD=down, l2_ahead.hpp), or null.
bool routing_in_experts_supported(int64_t tokens, const RouterShape& shape);
void nvfp4_experts_gated_routed(const DeviceNvfp4Linear& w, const __nv_bfloat16* x, int64_t tokens,
                                const RouterShape& shape, const Routing& out, bool gelu, __nv_bfloat16* act,
                                cudaStream_t stream, const DeviceNvfp4Linear* l2_down = nullptr,
                                const DeferredNorm* deferred = nullptr);

// Expert down projection: y[row_slot[r]] = act[r] W_e^T (float32, stored). l2_next: a weight whose
// bytes the projection's blocks ask L2 for before they wait (FP4LLM_L2_AHEAD=qkv: the next
// layer's qkv; steps of up to 16 tokens, l2_ahead.hpp).
void nvfp4_experts_down(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& rows, float* y,
                        cudaStream_t stream, const DeviceNvfp4Linear* l2_next = nullptr);

// The MoE layer's combine after its down projection: for each token t, residual[t] +=
// sum_c weights[t * top_k + c] * y[t * top_k + c] (choices with weight 0 skipped: another GPU's
// experts), then normed[t] = rmsnorm(residual[t]) * gain(next_w).
struct ExpertCombine {
  float* residual = nullptr;
  const float* weights = nullptr;
  int64_t top_k = 0;
  const float* next_w = nullptr;
  float eps = 1e-6f;
  bool one_plus = false;
  __nv_bfloat16* normed = nullptr;
};

// One token's experts' down projection, their weighted sum added to the residual stream, and the
// next norm deferred (FP4LLM_NORM_DEFERRED; nvfp4_experts_down_combined.cuh): residual +=
// sum_k weights[k] act[k] W_e(k)^T, then scaled and norm.sums as nvfp4_linear_add_deferred_norm
// leaves them, for the next qkv (nvfp4_linear_deferred_norm). r: the routing of a step of one token
// (max_rows 1), its row_slot indexing the weights.
constexpr int64_t kMaxCombinedExperts = 8;  // one warp of a block each
struct ExpertSum {
  float* residual = nullptr;        // [hidden] the stream, updated
  const float* weights = nullptr;   // [top_k] the token's routing weights
  int64_t top_k = 0;
};
void nvfp4_experts_down_deferred_norm(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& r,
                                      const ExpertSum& sum, const float* gain, const DeferredNorm& norm,
                                      __nv_bfloat16* scaled, cudaStream_t stream,
                                      const DeviceNvfp4Linear* l2_next = nullptr);

// nvfp4_experts_down, then the combine (add_weighted_and_norm, layer_kernels.hpp).
void nvfp4_experts_down_combine(const DeviceNvfp4Linear& w, const __nv_bfloat16* act, const ExpertRows& rows, float* y,
                                const ExpertCombine& combine, cudaStream_t stream);

// Dense BF16 weight [out, in] (lm_head): y = x W^T through cuBLAS.
void bf16_linear(const __nv_bfloat16* w, int64_t out_features, int64_t in_features,
                 const __nv_bfloat16* x, int64_t rows, float* y, LinearWorkspace& ws,
                 cudaStream_t stream);

}  // namespace fp4llm::cuda
