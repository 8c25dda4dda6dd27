// The forward pass on one GPU: the CUDA counterpart of cpu::CpuBackend, same Backend interface,
// judged against it. Activations: float32 residual stream, BF16 matrix-product inputs, float32
// products; KV cache paged FP8 E4M3 (or BF16) in the CPU backend's layout (or, under
// FP4LLM_KV_LAYOUT=head_major, each block's kv heads outermost: kv_cache_layout.hpp).
#pragma once

#include <map>
#include <memory>

#include "backend/backend.hpp"
#include "backend/cuda/collectives.hpp"
#include "backend/cuda/device_model.hpp"
#include "backend/cuda/paged_attention.hpp"
#include "backend/cuda/step_profiler.hpp"

namespace fp4llm::cuda {

struct GpuMemory {
  uint64_t weights = 0, kv_cache = 0, workspace = 0;
};

// The products that normalise their input themselves (nvfp4_linear_normed) in a decode step: the
// one after o_proj (gate_up, or the MoE router) and the next qkv.
struct NormsInProducts {
  bool ffn = false, qkv = false;
};

// A stage a benchmark leaves out of every step (`FP4LLM_OMIT_STAGE`): the replayed step's time
// without it is what the stage costs on the step's critical path, which eager per-stage events
// overstate for short kernels. The step's outputs are wrong while a stage is omitted.
// `attention`: the rope kernel and the attention; `rope`, `attention_only`: either alone.
enum class OmittedStage { none, qkv, attention, rope, attention_only, o_proj, ffn_in, down, lm_head };

class CudaBackend final : public Backend {
 public:
  // `enforce_eager`: launch every kernel each step instead of replaying CUDA graphs (vLLM's name).
  // `comm` (tensor parallelism): `model` is this rank's shard (rank_config, shard_weights); the
  // row-parallel products are summed over the ranks before each residual add, and every rank
  // gathers the full logits from the ranks' vocabulary slices.
  CudaBackend(DeviceModel model, const KvCacheConfig& cache, bool enforce_eager = false, Communicator comm = {});
  ~CudaBackend() override;
  const ModelConfig& config() const override { return model_.config; }
  void forward(const ForwardBatch& batch, std::vector<float>& logits) override;
  // The same step with the greedy token of each logits row picked on the GPU: only the ids
  // cross to the host.
  std::vector<int32_t> forward_greedy(const ForwardBatch& batch) override;
  // The same step with each logits row narrowed to its sampling candidates on the GPU when
  // FP4LLM_GPU_NARROWING=1 (written without a GPU, so off until it has run there), else on the host.
  void forward_candidates(const ForwardBatch& batch, std::span<const float> temperatures, CandidateRows& out) override;
  // The step alone, its logits left on the GPU (tensor-parallel ranks other than the first).
  void step(const ForwardBatch& batch);

  const DeviceModel& model() const { return model_; }
  const KvCacheConfig& cache() const { return cache_; }
  // Times each stage of the following steps (launched eagerly while profiling).
  StepProfiler& profiler() { return profiler_; }
  // From the next step on (graphs captured before are dropped); benchmarks only.
  void omit_stage(OmittedStage stage) {
    omitted_ = stage;
    drop_graphs();
  }
  GpuMemory memory() const;
  // MoE models: distinct experts used, summed over the layers of every step so far (the
  // benchmark's floor counts only the experts a step reads). Waits for the stream.
  uint64_t active_experts();

 private:
  struct Step;
  int64_t run(const ForwardBatch& batch);  // leaves logits in logits_, returns their rows
  void launch_step(const Step& step);      // every kernel of one step, on stream_
  Step plan(const ForwardBatch& batch) const;
  void upload(const Step& step);
  void ensure_capacity(int64_t tokens, int64_t logit_rows);
  void layer(int64_t index, const Step& step);
  AttentionParams attention_params(int64_t layer, const Step& step) const;
  // Which of this step's products normalise their input themselves (nvfp4_linear_normed).
  NormsInProducts norms_in_products(int64_t tokens) const;
  bool norm_deferred(int64_t tokens) const;
  bool moe_norm_deferred(int64_t tokens) const;
  DeferredNorm deferred_norm();
  // Whether `layer` keeps its K/V in the window pool (a sliding layer, with a pool configured).
  bool windowed(int64_t layer) const {
    return cache_.has_window_pool() && model_.config.layer_sliding[size_t(layer)];
  }

  void drop_graphs();

  DeviceModel model_;
  bool enforce_eager_ = false;
  // Decode steps replay a graph per (tokens, block-table stride); the kernels read everything that
  // changes between steps (ids, positions, slots, tables) from meta_, whose address is fixed.
  std::map<std::pair<int64_t, int64_t>, cudaGraphExec_t> graphs_;
  DeviceBuffer<uint8_t> cublas_workspace_;
  StepProfiler profiler_;
  OmittedStage omitted_ = OmittedStage::none;
  KvCacheConfig cache_;
  cudaStream_t stream_ = nullptr;
  LinearWorkspace linear_ws_;
  int num_sms_ = 0;
  std::vector<DeviceBuffer<uint8_t>> k_cache_, v_cache_;
  DeviceBuffer<float> inv_freq_full_, inv_freq_sliding_;
  // Step inputs (ids, positions, sequence of each token, logit rows, block tables, slots).
  DeviceBuffer<uint8_t> meta_;
  uint8_t* meta_host_ = nullptr;  // pinned staging for one upload per step
  size_t meta_host_bytes_ = 0;
  // Activations, grown to the largest step seen.
  int64_t capacity_tokens_ = 0;
  DeviceBuffer<float> x_, qkv_, q_, o_, gate_up_, logits_;
  DeviceBuffer<float> x_alt_;      // Gemma3 and MoE with norms in the products: the residual stream's other buffer
  float* residual_ = nullptr;      // the buffer holding the residual stream now (x_ at a step's start)
  bool experts_pending_ = false;   // an MoE layer left its experts' rows for the next qkv to add
  // FP4LLM_NORM_DEFERRED: the partial sums of squares the products that update the stream leave for
  // the next product, and whether the next qkv takes them (h_ holds the stream times its gains).
  DeviceBuffer<float> norm_sums_;
  bool norm_deferred_pending_ = false;
  DeviceBuffer<__nv_bfloat16> h_, attn_, act_, rows_;
  DeviceBuffer<float> attn_partial_out_, attn_partial_ml_;
  DeviceBuffer<unsigned> attn_counters_;  // split-KV arrivals per (token, kv head)
  DeviceBuffer<int32_t> argmax_;
  DeviceBuffer<float> narrow_temperatures_, narrow_values_;  // forward_candidates on the GPU
  DeviceBuffer<int32_t> narrow_ids_, narrow_counts_;
  MoeWorkspace moe_ws_;
  Communicator comm_;
  DeviceBuffer<float> lm_local_, lm_gathered_;  // tensor parallelism: this rank's logit columns, all ranks'

};

}  // namespace fp4llm::cuda
