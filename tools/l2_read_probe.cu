// How fast one SM pulls bytes into itself, by the four ways the decode GEMVs use (twenty-ninth
// session: the wgmma GEMVs at batch 64 move 13-22 GB/s a SM, whatever their pipelines' depth; is
// that a ceiling of the way, of L2, or of DRAM?). One block a SM (4 or 16 warps) reads 16 KB
// stages, `depth` of them in flight, and throws them away:
//   ldg       16-byte loads into registers, 4 stages issued before any is used
//   cp.async  16-byte copies into a shared ring of `depth` stages (commit groups)
//   bulk      one 128-byte bulk copy a thread (4 warps) a stage onto the stage's mbarrier, or one
//             16 KB bulk copy a stage by one thread
// from an L2-resident 512 KB buffer that every block reads (as x) or from a 2 GB buffer split
// among the blocks (as weights, from DRAM). Prints GB/s in all and a SM.
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/l2_read_probe.cu -o l2_read_probe
#include <cstdio>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "backend/cuda/bulk_copy.cuh"
#include "backend/cuda/copy_async.cuh"

namespace {

using namespace fp4llm::cuda;

constexpr int kStageBytes = 16 * 1024;
constexpr int kThreads = 128;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// The byte offset of stage i of this block: every block the same 512 KB (shared), or its own
// share of a large buffer, read around (own: shares of 15 MB and more, so that L2 serves none).
__device__ __forceinline__ size_t stage_offset(int i, size_t bytes, bool own) {
  const size_t stages = bytes / kStageBytes;
  if (!own) return (size_t(i) % stages) * kStageBytes;
  const size_t share = stages / gridDim.x;
  return (size_t(blockIdx.x) * share + size_t(i) % share) * kStageBytes;
}

template <int kBlock>
__global__ void __launch_bounds__(kBlock, 1) read_ldg(const uint8_t* src, size_t bytes, bool own, int stages, uint32_t* sink) {
  constexpr int kPieces = kStageBytes / 16 / kBlock;  // 16-byte loads a thread a stage
  uint32_t acc = 0;
  for (int i = 0; i < stages; i += 4) {
    uint4 v[4][kPieces];
#pragma unroll
    for (int d = 0; d < 4; ++d)
#pragma unroll
      for (int j = 0; j < kPieces; ++j)
        v[d][j] = __ldcg(reinterpret_cast<const uint4*>(src + stage_offset(i + d, bytes, own) + (j * kBlock + threadIdx.x) * 16));
#pragma unroll
    for (int d = 0; d < 4; ++d)
#pragma unroll
      for (int j = 0; j < kPieces; ++j) acc ^= v[d][j].x ^ v[d][j].w;
  }
  if (acc == 0x12345678u) sink[0] = acc;  // keeps the loads
}

template <int kDepth, int kBlock>
__global__ void __launch_bounds__(kBlock, 1) read_cp_async(const uint8_t* src, size_t bytes, bool own, int stages) {
  extern __shared__ __align__(128) uint8_t ring[];
  constexpr int kPieces = kStageBytes / 16 / kBlock;
  for (int i = 0; i < stages; ++i) {
    uint8_t* slot = ring + (i % kDepth) * kStageBytes;
#pragma unroll
    for (int j = 0; j < kPieces; ++j) {
      const int at = (j * kBlock + int(threadIdx.x)) * 16;
      copy_async16(slot + at, src + stage_offset(i, bytes, own) + at);
    }
    copy_async_commit();
    copy_async_wait<kDepth - 1>();
  }
  copy_async_wait<0>();
}

template <int kDepth, bool kPerThread>
__global__ void __launch_bounds__(kThreads, 1) read_bulk(const uint8_t* src, size_t bytes, bool own, int stages) {
  extern __shared__ __align__(128) uint8_t ring[];
  uint64_t* landed = reinterpret_cast<uint64_t*>(ring + kDepth * kStageBytes);
  if (threadIdx.x == 0) {
    for (int d = 0; d < kDepth; ++d) barrier_init(landed + d, kPerThread ? kThreads : 1);
    barrier_init_fence();
  }
  __syncthreads();
  for (int i = 0; i < stages; ++i) {
    const int d = i % kDepth;
    if (i >= kDepth) barrier_wait(landed + d, uint32_t((i / kDepth - 1) & 1));  // the slot's last use landed
    uint8_t* slot = ring + d * kStageBytes;
    if constexpr (kPerThread) {
      barrier_expect_bytes(landed + d, 128);
      bulk_copy(slot + threadIdx.x * 128, src + stage_offset(i, bytes, own) + threadIdx.x * 128, 128, landed + d);
    } else if (threadIdx.x == 0) {
      barrier_expect_bytes(landed + d, kStageBytes);
      bulk_copy(slot, src + stage_offset(i, bytes, own), kStageBytes, landed + d);
    }
  }
  for (int i = stages; i < stages + kDepth; ++i)
    if (i >= kDepth) barrier_wait(landed + i % kDepth, uint32_t((i / kDepth - 1) & 1));
}

template <typename Launch>
double seconds(Launch launch) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  launch();  // warm-up
  check(cudaEventRecord(a), "record");
  for (int r = 0; r < 3; ++r) launch();
  check(cudaEventRecord(b), "record");
  check(cudaEventSynchronize(b), "sync");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "elapsed");
  check(cudaGetLastError(), "launch");
  return ms / 3e3;
}

}  // namespace

int main() {
  try {
    int sms = 0;
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "attribute");
    constexpr size_t kShared = 512 * 1024, kOwn = size_t(2) << 30;
    uint8_t* buf = nullptr;
    uint32_t* sink = nullptr;
    check(cudaMalloc(&buf, kOwn), "malloc");
    check(cudaMalloc(&sink, 4), "malloc");
    check(cudaMemset(buf, 1, kOwn), "memset");
    const int stages = 2048;  // 32 MB a block
    std::printf("| way | depth | source | GB/s | GB/s a SM |\n|---|---|---|---|---|\n");
    const auto row = [&](const char* way, int depth, bool own, auto launch) {
      const double s = seconds(launch);
      const double gb = double(sms) * stages * kStageBytes / s / 1e9;
      std::printf("| %s | %d | %s | %.0f | %.1f |\n", way, depth, own ? "DRAM (own runs)" : "L2 (shared 512 KB)", gb, gb / sms);
    };
    for (const bool own : {false, true}) {
      const size_t bytes = own ? kOwn : kShared;
      const auto ldg = [&]<int B>() {
        row(B == 128 ? "ldg, 4 warps" : "ldg, 16 warps", 4, own, [&] { read_ldg<B><<<sms, B>>>(buf, bytes, own, stages, sink); });
      };
      ldg.template operator()<128>();
      ldg.template operator()<512>();
      const auto cp = [&]<int D, int B>() {
        check(cudaFuncSetAttribute(read_cp_async<D, B>, cudaFuncAttributeMaxDynamicSharedMemorySize, D * kStageBytes), "attr");
        row(B == 128 ? "cp.async, 4 warps" : "cp.async, 16 warps", D, own,
            [&] { read_cp_async<D, B><<<sms, B, D * kStageBytes>>>(buf, bytes, own, stages); });
      };
      cp.template operator()<2, 128>();
      cp.template operator()<4, 128>();
      cp.template operator()<8, 128>();
      cp.template operator()<4, 512>();
      cp.template operator()<8, 512>();
      const auto bulk = [&]<int D, bool kPerThread>() {
        const int smem = D * kStageBytes + 8 * D;
        check(cudaFuncSetAttribute(read_bulk<D, kPerThread>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "attr");
        row(kPerThread ? "bulk, 128 B a thread" : "bulk, 16 KB by one thread", D, own,
            [&] { read_bulk<D, kPerThread><<<sms, kThreads, smem>>>(buf, bytes, own, stages); });
      };
      bulk.template operator()<2, true>();
      bulk.template operator()<8, true>();
      bulk.template operator()<2, false>();
      bulk.template operator()<4, false>();
      bulk.template operator()<8, false>();
    }
    cudaFree(buf);
    cudaFree(sink);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
