// Probe of what a phase boundary costs on the GPU, to decide whether a persistent per-layer
// kernel (phases meeting at grid-wide barriers) would beat the MoE batch-1 layer's seven
// dependent kernels (docs/PERFORMANCE.md: about 8 us each against about 1.5 us of weight bytes).
// Not product code. Four ways to separate N phases, each timed over many repetitions:
//   graph       N empty kernels in one CUDA graph (what a decode step is today, without early launch)
//   graph+pdl   the same with programmatic dependent launch, each kernel waiting at its start
//   coop        one cooperative kernel, N cg::grid_group::sync() (one block per SM)
//   counter     one cooperative kernel, N hand-made barriers (an arrival counter and a generation
//               word in global memory: one atomic per block, the others spin on one L2 line)
// Each phase does a trivial dependent write so that nothing is optimised away, and the counter
// barrier's result is checked (every block sees every other block's phase write).
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/grid_barrier_probe.cu -o grid_barrier_probe
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace cg = cooperative_groups;

#define CHECK(call)                                                                        \
  do {                                                                                     \
    const cudaError_t e_ = (call);                                                         \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

namespace {

constexpr int kThreads = 128;

// One phase of the graph variants: block 0's thread 0 bumps the phase word.
__global__ void phase_kernel(unsigned* word, bool wait) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (wait) asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
  if (blockIdx.x == 0 && threadIdx.x == 0) *word += 1;
}

__global__ void coop_kernel(unsigned* word, int phases) {
  cg::grid_group grid = cg::this_grid();
  for (int i = 0; i < phases; ++i) {
    if (blockIdx.x == 0 && threadIdx.x == 0) *word += 1;
    grid.sync();
  }
}

// A sense-reversing barrier: the last block to arrive resets the count and bumps the generation.
__device__ __forceinline__ void counter_barrier(unsigned* count, volatile unsigned* generation, unsigned blocks) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned gen = *generation;
    __threadfence();
    if (atomicAdd(count, 1u) == blocks - 1) {
      atomicExch(count, 0u);
      __threadfence();
      atomicAdd(const_cast<unsigned*>(generation), 1u);
    } else {
      while (*generation == gen) {
      }
    }
    __threadfence();
  }
  __syncthreads();
}

// Phase i: every block writes i into its slot, then after the barrier checks its neighbour's.
__global__ void counter_kernel(unsigned* slots, unsigned* count, unsigned* generation, int phases, unsigned* errors) {
  const unsigned blocks = gridDim.x, next = (blockIdx.x + 1) % blocks;
  for (int i = 1; i <= phases; ++i) {
    if (threadIdx.x == 0) slots[blockIdx.x] = unsigned(i);
    counter_barrier(count, generation, blocks);
    if (threadIdx.x == 0 && reinterpret_cast<volatile unsigned*>(slots)[next] < unsigned(i)) atomicAdd(errors, 1u);
    counter_barrier(count, generation, blocks);  // nobody writes phase i + 1 before all have checked i
  }
}

// Microseconds per phase boundary: `launch` (phases x boundaries_per_phase of them) run once to
// warm up, then timed over 20 runs.
template <typename Launch>
float us_per_boundary(cudaStream_t stream, int boundaries, Launch launch) {
  launch();
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  constexpr int kRepeats = 20;
  CHECK(cudaEventRecord(start, stream));
  for (int r = 0; r < kRepeats; ++r) launch();
  CHECK(cudaEventRecord(stop, stream));
  CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, start, stop));
  CHECK(cudaEventDestroy(start));
  CHECK(cudaEventDestroy(stop));
  return ms * 1000.0f / float(kRepeats * boundaries);
}

float graph_us_per_phase(int blocks, int phases, bool pdl, unsigned* word, cudaStream_t stream) {
  cudaGraph_t graph;
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < phases; ++i) {
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(unsigned(blocks));
    config.blockDim = dim3(kThreads);
    config.stream = stream;
    config.attrs = &attribute;
    config.numAttrs = pdl ? 1 : 0;
    CHECK(cudaLaunchKernelEx(&config, phase_kernel, word, pdl));
  }
  CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  const float us = us_per_boundary(stream, phases, [&] { CHECK(cudaGraphLaunch(exec, stream)); });
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  return us;
}

template <typename... Args>
float coop_us_per_phase(void* kernel, int blocks, int phases, int barriers_per_phase, cudaStream_t stream, Args... args) {
  void* params[] = {&args...};
  return us_per_boundary(stream, phases * barriers_per_phase, [&] {
    CHECK(cudaLaunchCooperativeKernel(kernel, dim3(unsigned(blocks)), dim3(kThreads), params, 0, stream));
  });
}

}  // namespace

int main() {
  int device = 0, sms = 0;
  CHECK(cudaGetDevice(&device));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, device));
  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  unsigned *word, *slots, *count, *generation, *errors;
  CHECK(cudaMalloc(&word, 4));
  CHECK(cudaMalloc(&slots, size_t(sms) * 4));
  CHECK(cudaMalloc(&count, 4));
  CHECK(cudaMalloc(&generation, 4));
  CHECK(cudaMalloc(&errors, 4));
  CHECK(cudaMemset(word, 0, 4));
  CHECK(cudaMemset(slots, 0, size_t(sms) * 4));
  CHECK(cudaMemset(count, 0, 4));
  CHECK(cudaMemset(generation, 0, 4));
  CHECK(cudaMemset(errors, 0, 4));

  std::printf("# %s, %d SMs, one block of %d threads per SM; microseconds per phase boundary\n", prop.name, sms, kThreads);
  std::printf("| phases | graph | graph+pdl | coop grid.sync | counter barrier |\n|---|---|---|---|---|\n");
  for (int phases : {7, 48, 336}) {
    const float graph = graph_us_per_phase(sms, phases, false, word, stream);
    const float pdl = graph_us_per_phase(sms, phases, true, word, stream);
    const float coop = coop_us_per_phase(reinterpret_cast<void*>(coop_kernel), sms, phases, 1, stream, word, phases);
    const float counter = coop_us_per_phase(reinterpret_cast<void*>(counter_kernel), sms, phases, 2, stream, slots, count,
                                            generation, phases, errors);
    std::printf("| %d | %.2f | %.2f | %.2f | %.2f |\n", phases, graph, pdl, coop, counter);
  }
  unsigned bad = 0;
  CHECK(cudaMemcpy(&bad, errors, 4, cudaMemcpyDeviceToHost));
  std::printf("counter barrier check: %s (%u stale reads)\n", bad == 0 ? "passed" : "FAILED", bad);
  return bad == 0 ? 0 : 1;
}
