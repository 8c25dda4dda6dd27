// sm_90a's warpgroup MMA as the wide decode GEMV uses it (nvfp4_gemv_wgmma.cuh): D (64 x N
// float32, the mma.sync C layout per warp and 8-column tile) += A (64 x 16 BF16 from registers,
// the mma.sync A layout per warp: warp w holds rows 16w .. 16w + 15) x B (16 x N BF16 in shared
// memory, K-major core matrices without swizzle), PTX ISA 9.7.15. On other targets the
// instructions compile to a trap: the host selects this path only on sm_90 (nvfp4_linear.cu).
#pragma once

#include <cstdint>
#include <type_traits>

namespace fp4llm::cuda {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FP4LLM_WGMMA 1
#endif

// The shared-memory descriptor of an operand without swizzle, K-major or (imm-trans-b) N-major:
// 8 x 16-byte core matrices, the next along K `k_stride` bytes on (the leading byte offset), the
// next along M or N `n_stride` bytes on (the stride byte offset); both multiples of 16.
__device__ __forceinline__ uint64_t wgmma_descriptor(const void* smem, uint32_t k_stride, uint32_t n_stride) {
  const uint32_t address = uint32_t(__cvta_generic_to_shared(smem));
  return uint64_t((address & 0x3FFFF) >> 4) | (uint64_t(k_stride >> 4) << 16) | (uint64_t(n_stride >> 4) << 32);
}

// Orders this thread's register writes (A fragments, accumulators) before the next wgmma.
__device__ __forceinline__ void wgmma_fence() {
#ifdef FP4LLM_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void wgmma_commit() {
#ifdef FP4LLM_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

// Waits until at most N committed groups of this warpgroup are still running.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#ifdef FP4LLM_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

// Generic-proxy writes to shared memory made visible to the MMA's (async proxy) reads; then a
// barrier among the threads that wrote.
__device__ __forceinline__ void fence_shared_for_wgmma() {
#ifdef FP4LLM_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// d[kFirst .. kFirst + 7] += a x b for one k-step of 16, N = 64, with A (64 x 16) from registers
// in the mma.sync A layout per warp and B (16 x 64) in shared memory without swizzle, K-major or,
// with kTransB (imm-trans-b = 1), N-major: core matrices of 8 K rows x 16 bytes (8 consecutive N
// elements), the descriptor's leading offset the stride between 8-row groups along K and its
// stride offset the stride between 8-element groups along N (PTX ISA 9.7.15.5.1.2, MN-major
// canonical layout ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO))). N-major serves the flash prefill's PV
// (FP4LLM_FLASH_WGMMA_PV): V's rows as stored, P from the softmax's registers. kF16: FP16 operands
// (FP8 caches), else BF16.
template <bool kF16, bool kTransB, int kFirst, int kTiles>
__device__ __forceinline__ void wgmma_rs_64x64x16(float (&d)[kTiles][4], const uint32_t (&a)[4], uint64_t b) {
  static_assert(kFirst + 8 <= kTiles, "8 accumulator tiles of 8 columns");
#ifdef FP4LLM_WGMMA
#define FP4LLM_WGMMA_RS(type)                                                                                        \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"                                                          \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." type "." type " "                                      \
               "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"                                           \
               "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "                                \
               "{%32,%33,%34,%35}, %36, p, 1, 1, %37;\n}\n"                                                       \
               : "+f"(d[kFirst][0]), "+f"(d[kFirst][1]), "+f"(d[kFirst][2]), "+f"(d[kFirst][3]),                  \
                 "+f"(d[kFirst + 1][0]), "+f"(d[kFirst + 1][1]), "+f"(d[kFirst + 1][2]), "+f"(d[kFirst + 1][3]),  \
                 "+f"(d[kFirst + 2][0]), "+f"(d[kFirst + 2][1]), "+f"(d[kFirst + 2][2]), "+f"(d[kFirst + 2][3]),  \
                 "+f"(d[kFirst + 3][0]), "+f"(d[kFirst + 3][1]), "+f"(d[kFirst + 3][2]), "+f"(d[kFirst + 3][3]),  \
                 "+f"(d[kFirst + 4][0]), "+f"(d[kFirst + 4][1]), "+f"(d[kFirst + 4][2]), "+f"(d[kFirst + 4][3]),  \
                 "+f"(d[kFirst + 5][0]), "+f"(d[kFirst + 5][1]), "+f"(d[kFirst + 5][2]), "+f"(d[kFirst + 5][3]),  \
                 "+f"(d[kFirst + 6][0]), "+f"(d[kFirst + 6][1]), "+f"(d[kFirst + 6][2]), "+f"(d[kFirst + 6][3]),  \
                 "+f"(d[kFirst + 7][0]), "+f"(d[kFirst + 7][1]), "+f"(d[kFirst + 7][2]), "+f"(d[kFirst + 7][3])   \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(int(kTransB))                            \
               : "memory")
  if constexpr (kF16) FP4LLM_WGMMA_RS("f16");
  else FP4LLM_WGMMA_RS("bf16");
#undef FP4LLM_WGMMA_RS
#else
  __trap();
#endif
}

// d += a x b for one k-step of 16, N = 16, 32 or 64 columns (tokens).
template <int N>
__device__ __forceinline__ void wgmma_64xNx16(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t b) {
#ifdef FP4LLM_WGMMA
  if constexpr (N == 16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9,%10,%11}, %12, p, 1, 1, 0;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]),
          "+f"(d[1][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b)
        : "memory");
  } else if constexpr (N == 32) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, {%16,%17,%18,%19}, %20, p, 1, 1, 0;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]),
          "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]),
          "+f"(d[3][2]), "+f"(d[3][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b)
        : "memory");
  } else {
    static_assert(N == 64, "wgmma_64xNx16: N = 16, 32 or 64");
    wgmma_rs_64x64x16<false, false, 0>(d, a, b);
  }
#endif
}

// d (= or +=, by `accumulate`) a x b for one k-step of 16 with both operands in shared memory
// (K-major core matrices without swizzle, as wgmma_descriptor describes), N = 64: the flash prefill
// kernel's scores (FP4LLM_FLASH_WGMMA), Q (64 query rows) times a 64-key tile. kF16: FP16
// operands (FP8 caches), else BF16.
template <bool kF16>
__device__ __forceinline__ void wgmma_ss_64x64x16(float (&d)[8][4], uint64_t a, uint64_t b, bool accumulate) {
#ifdef FP4LLM_WGMMA
  // One statement for both operand types (the type is part of the instruction's text).
#define FP4LLM_WGMMA_SS(type)                                                                                        \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                          \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." type "." type " "                                      \
               "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"                                           \
               "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "                                \
               "%32, %33, p, 1, 1, 0, 0;\n}\n"                                                                       \
               : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),        \
                 "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),        \
                 "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),        \
                 "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),        \
                 "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),        \
                 "+f"(d[7][2]), "+f"(d[7][3])                                                                     \
               : "l"(a), "l"(b), "r"(int(accumulate))                                                            \
               : "memory")
  if constexpr (kF16) FP4LLM_WGMMA_SS("f16");
  else FP4LLM_WGMMA_SS("bf16");
#undef FP4LLM_WGMMA_SS
#else
  __trap();
#endif
}

// Keeps the compiler from moving writes or reads of these registers across the wgmma
// instructions around them (their asynchronous use is invisible to it).
template <class T, int N>
__device__ __forceinline__ void wgmma_pin(T (&v)[N][4]) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, uint32_t>, "accumulators or A fragments");
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if constexpr (std::is_same_v<T, float>) asm volatile("" : "+f"(v[i][j])::"memory");
      else asm volatile("" : "+r"(v[i][j])::"memory");
    }
}

// A barrier among the 128 threads of one warpgroup (hardware barrier 1 + index; 0 is __syncthreads).
__device__ __forceinline__ void warpgroup_barrier(int index) {
  asm volatile("bar.sync %0, 128;\n" ::"r"(1 + index) : "memory");
}

}  // namespace fp4llm::cuda
