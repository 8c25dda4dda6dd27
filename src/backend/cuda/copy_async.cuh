// Asynchronous global -> shared copies (cp.async, sm_80+): bytes in flight without holding
// registers, completed per thread in commit groups.
#pragma once

#include <cstdint>

namespace fp4llm::cuda {

__device__ __forceinline__ uint32_t shared_address(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void copy_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(shared_address(dst)), "l"(src));
}

// 16 bytes, or 16 zero bytes when !valid (nothing is read then).
__device__ __forceinline__ void copy_async16_or_zero(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void copy_async4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(shared_address(dst)), "l"(src));
}

__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most N of this thread's commit groups are still in flight.
template <int N>
__device__ __forceinline__ void copy_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// An arrival on `barrier` once every cp.async this thread issued so far has landed (counted in the
// barrier's expected arrivals: .noinc).
__device__ __forceinline__ void copy_async_arrive(uint64_t* barrier) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(shared_address(barrier)) : "memory");
}

// The same with a count known only at run time (0-7; more waits for every group).
__device__ __forceinline__ void copy_async_wait_at_most(int pending) {
  switch (pending) {
    case 7: return copy_async_wait<7>();
    case 6: return copy_async_wait<6>();
    case 5: return copy_async_wait<5>();
    case 4: return copy_async_wait<4>();
    case 3: return copy_async_wait<3>();
    case 2: return copy_async_wait<2>();
    case 1: return copy_async_wait<1>();
    default: return copy_async_wait<0>();
  }
}

}  // namespace fp4llm::cuda
