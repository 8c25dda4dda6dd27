// Bulk global -> shared copies completed on a shared-memory barrier (sm_90's cp.async.bulk and
// mbarrier): one thread moves any multiple of 16 bytes with one instruction, the copy engine
// counts the bytes onto the barrier, and readers wait on the barrier's phase. No registers are
// held while the bytes are in flight, unlike loads, and no per-thread commit groups are issued,
// unlike cp.async. Trap before sm_90 (their only callers are sm_90 kernels).
#pragma once

#include <cstdint>

#include "backend/cuda/copy_async.cuh"

namespace fp4llm::cuda {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FP4LLM_BULK_COPY 1
#endif

// A barrier that one arrival (the copies' issuer) and the bytes it announces complete.
__device__ __forceinline__ void barrier_init_single(uint64_t* barrier) {
#ifdef FP4LLM_BULK_COPY
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(shared_address(barrier)) : "memory");
#else
  __trap();
#endif
}

// A barrier that `count` arrivals (and the bytes announced among them) complete.
__device__ __forceinline__ void barrier_init(uint64_t* barrier, uint32_t count) {
#ifdef FP4LLM_BULK_COPY
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(count) : "memory");
#else
  __trap();
#endif
}

// One arrival (release: this thread's earlier writes and reads are ordered before the phase ends).
__device__ __forceinline__ void barrier_arrive(uint64_t* barrier) {
#ifdef FP4LLM_BULK_COPY
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(shared_address(barrier)) : "memory");
#endif
}

// Makes barriers initialised by this thread visible to the copy engine (the async proxy).
__device__ __forceinline__ void barrier_init_fence() {
#ifdef FP4LLM_BULK_COPY
  asm volatile("fence.mbarrier_init.release.cluster;\nfence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// The issuer's arrival, announcing `bytes` to come from bulk copies on this barrier.
__device__ __forceinline__ void barrier_expect_bytes(uint64_t* barrier, uint32_t bytes) {
#ifdef FP4LLM_BULK_COPY
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(bytes)
               : "memory");
#endif
}

// `bytes` (a multiple of 16; both addresses 16-byte aligned) from global `src` to shared `dst`,
// counted onto `barrier`.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* barrier) {
#ifdef FP4LLM_BULK_COPY
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(shared_address(dst)),
      "l"(__cvta_generic_to_global(src)), "r"(bytes), "r"(shared_address(barrier))
      : "memory");
#else
  __trap();
#endif
}

// The box at (column c0, row c1) of the 2-D tensor `map` describes (a kernel parameter declared
// __grid_constant__, so that its address is the parameter's) into shared `dst` (aligned as the
// map's swizzle needs: 1,024 bytes for 128-byte swizzle), its bytes counted onto `barrier`. The
// whole box's bytes count, elements outside the tensor filled with zeros.
__device__ __forceinline__ void tensor_copy_2d(void* dst, const void* map, int c0, int c1, uint64_t* barrier) {
#ifdef FP4LLM_BULK_COPY
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          shared_address(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(shared_address(barrier))
      : "memory");
#else
  __trap();
#endif
}

// Waits until the barrier's phase of parity `parity` (0 for its first completion, then 1, 0, ...)
// has completed.
__device__ __forceinline__ void barrier_wait(uint64_t* barrier, uint32_t parity) {
#ifdef FP4LLM_BULK_COPY
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n"
      "}\n" ::"r"(shared_address(barrier)),
      "r"(parity)
      : "memory");
#endif
}

}  // namespace fp4llm::cuda
