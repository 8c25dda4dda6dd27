// Probe of a batch-1 NVFP4 GEMV on FP8 tensor cores (mma.sync m16n8k32 e4m3, sm_89+), to decide
// whether it is worth building into the engine (docs/PERFORMANCE.md, fifth round: the BF16 path
// spends about 75 of its 125 instructions per 576-byte chunk building BF16 pairs). Not product
// code: its own weight layout, random data, a float64 check and a timing on Qwen3-8B's shapes;
// its chunk loop has the shape of nvfp4_gemv_direct.cuh's on purpose, so the timings compare.
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/fp8_gemv_probe.cu -o fp8_gemv_probe
// (-gencode=arch=compute_89,code=sm_89 for Ada.)
//
// Finding from its sm_90a SASS (cuobjdump, 2026-12-04, not yet run): Hopper has no native FP8
// mma.sync. ptxas emulates each m16n8k32 e4m3 MMA with F2FP.F16.E4M3.UNPACK_B conversions of every
// A and B register and two HMMA.16816.F32 (FP16), so a chunk costs about 85 instructions against
// the BF16 kernel's 125, not the 50 the native instruction would give; on sm_90 native FP8 tensor
// cores are reachable only through wgmma. On Ada (sm_89) the instruction is native.
//
// Numerics. An E2M1 code placed in E4M3 bit positions (sign at 7, magnitude at 4..2) is the same
// value times 2^-6, exactly (E2M1's subnormal 0.5 lands on E4M3's subnormal grid). x is scaled by
// a power of two so that max|x| <= 448 and split into hi = e4m3(x) and lo = e4m3(x - hi), which
// carries BF16's 8 significant bits. Block scales cannot go into the E4M3 weights exactly, so each
// MMA covers two 16-value blocks and B is block-diagonal over its N columns: column 0 = hi of the
// first block, 1 = hi of the second, 2 = lo of the first, 3 = lo of the second (4..7 zero); the
// block scales then multiply the MMA results (4 FFMA per MMA).
//
// Layout of one 16-row tile x 64-column chunk, lane L = 4g + t:
//   weights, 16 bytes: word 2m+h (MMA m, h = 0: the first block of the MMA, 1: the second) holds
//     row g's 4 values (columns 4t..4t+3 of the block) at bits {7,4,3,2} of each byte and row
//     g+8's 4 values at bits {5,6,1,0} (sign, magnitude bit 2, bits 1..0): one AND gives the first
//     E4M3 register, two shifts and two logic operations the second;
//   scales, 8 bytes per g (the 4 lanes of a g share them): byte 2b + u = block b, row g + 8u;
//   x, 16 bytes per lane: MMA 0's b0, b1, MMA 1's b0, b1 (the block-diagonal B above).
#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cuda/streaming_load.cuh"

using fp4llm::cuda::load_streaming;

#define CHECK(x)                                                                       \
  do {                                                                                 \
    cudaError_t e_ = (x);                                                              \
    if (e_ != cudaSuccess) {                                                           \
      std::fprintf(stderr, "%s: %s (%s:%d)\n", #x, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)

constexpr int kWarps = 8;
constexpr int kAhead = 2;  // chunks requested before the arithmetic

__device__ __forceinline__ void mma_e4m3(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(0.0f), "f"(0.0f), "f"(0.0f), "f"(0.0f));
}

__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t two) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xFFFF), __NV_E4M3);
  return __half22float2(__half2(h));
}

// One chunk: two MMAs, block scales on their results. acc[0]: row g, acc[1]: row g + 8.
__device__ __forceinline__ void chunk(float (&acc)[2], uint4 w, uint2 s, uint4 x) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
  uint32_t a[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    a[i][0] = words[i] & 0x9C9C9C9Cu;
    a[i][1] = ((words[i] << 2) & 0x8C8C8C8Cu) | ((words[i] >> 2) & 0x10101010u);
  }
  const uint32_t sw[2] = {s.x, s.y};
#pragma unroll
  for (int m = 0; m < 2; ++m) {
    float c[4];
    mma_e4m3(c, a[2 * m][0], a[2 * m][1], a[2 * m + 1][0], a[2 * m + 1][1], m ? x.z : x.x, m ? x.w : x.y);
    const float2 first = e4m3x2_to_float2(sw[m]);         // block 2m: rows g, g+8
    const float2 second = e4m3x2_to_float2(sw[m] >> 16);  // block 2m+1
    acc[0] = fmaf(first.x, c[0], fmaf(second.x, c[1], acc[0]));
    acc[1] = fmaf(first.y, c[2], fmaf(second.y, c[3], acc[1]));
  }
}

struct Args {
  const uint4* w;
  const uint2* s;
  const float* tile_scale;
  const uint4* x;  // prepared, [k_chunks][32]
  float x_unscale;
  int row_tiles, k_chunks, splits, chunks_per_split;
  float* y;
};

__global__ void __launch_bounds__(kWarps * 32) fp8_gemv(Args p) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int tile = blockIdx.x * (kWarps / p.splits) + warp / p.splits, split = warp % p.splits;
  const bool live = tile < p.row_tiles;
  const int begin = split * p.chunks_per_split;
  const int n = live ? min(p.k_chunks, begin + p.chunks_per_split) - begin : 0;
  const uint4* wl = p.w + (size_t(tile) * p.k_chunks + begin) * 32 + lane;
  const uint2* sl = p.s + (size_t(tile) * p.k_chunks + begin) * 8 + g;
  const uint4* xl = p.x + size_t(begin) * 32 + lane;
  float acc[2] = {0, 0};
  uint4 wn[kAhead];
  uint2 sn[kAhead];
#pragma unroll
  for (int u = 0; u < kAhead; ++u)
    if (u < n) wn[u] = load_streaming(wl + u * 32), sn[u] = load_streaming(sl + u * 8);
  for (int c = 0; c < n; c += kAhead) {
    uint4 w[kAhead];
    uint2 s[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; ++u) w[u] = wn[u], s[u] = sn[u];
#pragma unroll
    for (int u = 0; u < kAhead; ++u)
      if (c + kAhead + u < n) wn[u] = load_streaming(wl + (c + kAhead + u) * 32), sn[u] = load_streaming(sl + (c + kAhead + u) * 8);
#pragma unroll
    for (int u = 0; u < kAhead; ++u)
      if (c + u < n) chunk(acc, w[u], s[u], __ldg(xl + (c + u) * 32));
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) acc[r] += __shfl_xor_sync(0xFFFFFFFFu, acc[r], 1);  // hi lanes + lo lanes
  __shared__ float partial[kWarps][2][32];
  if (p.splits > 1) {
    partial[warp][0][lane] = acc[0], partial[warp][1][lane] = acc[1];
    __syncthreads();
    if (split != 0) return;
    for (int other = 1; other < p.splits; ++other)
      acc[0] += partial[warp + other][0][lane], acc[1] += partial[warp + other][1][lane];
  }
  if (live && t == 0) {
    const float scale = p.tile_scale[tile] * 64.0f * p.x_unscale;  // 2^6: E2M1 as E4M3
    p.y[tile * 16 + g] = acc[0] * scale;
    p.y[tile * 16 + g + 8] = acc[1] * scale;
  }
}

// ---- host: layout, reference, timing ----

float e2m1(int code) {
  static const float v[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  return (code & 8 ? -1.0f : 1.0f) * v[code & 7];
}

float e4m3(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  const float mag = e ? std::ldexp(1.0f + m / 8.0f, e - 7) : std::ldexp(m / 8.0f, -6);
  return b & 0x80 ? -mag : mag;
}

uint8_t to_e4m3(float v) {  // round to nearest even by search over the 256 codes (host only)
  uint8_t best = 0;
  float err = INFINITY;
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7F) == 0x7F) continue;
    const float d = std::fabs(e4m3(uint8_t(b)) - v);
    if (d < err || (d == err && (b & 1) == 0)) err = d, best = uint8_t(b);
  }
  return best;
}

struct Layout {
  int n, k, row_tiles, k_chunks;
  std::vector<uint32_t> w;  // [tile][chunk][lane][4]
  std::vector<uint8_t> s;   // [tile][chunk][g][8]
  std::vector<float> tile_scale;
};

// Weight value of (row, col) as the layout defines it (independent of the kernel's decoding).
double weight(const Layout& l, int row, int col) {
  const int tile = row / 16, r = row % 16, g = r % 8, upper = r / 8;
  const int chunk = col / 64, c = col % 64, block = c / 16, t = (c % 16) / 4, j = c % 4;
  const int lane = 4 * g + t, word = block;  // word 2m+h = block 2m+h
  const uint32_t wv = l.w[((size_t(tile) * l.k_chunks + chunk) * 32 + lane) * 4 + word];
  const uint8_t b = uint8_t(wv >> (8 * j));
  const int code = upper == 0 ? ((b >> 7) << 3) | ((b >> 2) & 7) : (((b >> 5) & 1) << 3) | (((b >> 6) & 1) << 2) | (b & 3);
  const uint8_t sb = l.s[((size_t(tile) * l.k_chunks + chunk) * 8 + g) * 8 + 2 * block + upper];
  return double(e2m1(code)) * e4m3(sb) * l.tile_scale[tile];
}

Layout random_layout(int n, int k, uint32_t seed) {
  Layout l{n, k, n / 16, k / 64, {}, {}, {}};
  std::mt19937 rng(seed);
  l.w.resize(size_t(l.row_tiles) * l.k_chunks * 32 * 4);
  for (auto& v : l.w) v = rng();
  l.s.resize(size_t(l.row_tiles) * l.k_chunks * 64);
  for (auto& v : l.s) v = uint8_t(0x28 + rng() % 24);  // 2^-2 .. 2^1 range, never NaN
  l.tile_scale.resize(size_t(l.row_tiles));
  for (auto& v : l.tile_scale) v = 1e-2f * (1 + rng() % 7);
  return l;
}

// x prepared on the host: power-of-two scale, hi/lo E4M3, block-diagonal fragments.
std::vector<uint32_t> prepare_x(const std::vector<float>& x, float& unscale) {
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const int e = int(std::floor(std::log2(448.0f / amax)));
  unscale = std::ldexp(1.0f, -e);
  const int chunks = int(x.size() / 64);
  std::vector<uint32_t> out(size_t(chunks) * 32 * 4, 0);
  for (int c = 0; c < chunks; ++c)
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane / 4, t = lane % 4;
      if (g >= 4) continue;
      for (int m = 0; m < 2; ++m) {
        const int block = 2 * m + (g & 1);  // g 0, 2: first block of the MMA; 1, 3: second
        uint32_t reg = 0;
        for (int j = 0; j < 4; ++j) {
          const float v = std::ldexp(x[size_t(c) * 64 + block * 16 + 4 * t + j], e);
          const uint8_t hi = to_e4m3(v);
          const uint8_t byte = g < 2 ? hi : to_e4m3(v - e4m3(hi));
          reg |= uint32_t(byte) << (8 * j);
        }
        out[(size_t(c) * 32 + lane) * 4 + 2 * m + (g & 1)] = reg;  // b0 for the first block, b1 for the second
      }
    }
  return out;
}

template <typename T>
T* upload(const std::vector<T>& v) {
  T* d = nullptr;
  CHECK(cudaMalloc(&d, v.size() * sizeof(T)));
  CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

int splits_for(int k_chunks) {
  int s = 1;
  while (s < kWarps && k_chunks / (2 * s) >= 8) s *= 2;
  return s;
}

Args args_for(const Layout& l, const uint4* w, const uint2* s, const float* ts, const uint4* x, float unscale, float* y) {
  Args a{w, s, ts, x, unscale, l.row_tiles, l.k_chunks, splits_for(l.k_chunks), 0, y};
  a.chunks_per_split = (l.k_chunks + a.splits - 1) / a.splits;
  return a;
}

void launch(const Args& a) {
  const int tiles_per_block = kWarps / a.splits;
  fp8_gemv<<<(a.row_tiles + tiles_per_block - 1) / tiles_per_block, kWarps * 32>>>(a);
}

int main() {
  int failures = 0;
  std::mt19937 rng(11);
  // Correctness on small shapes against float64.
  const int check_shapes[4][2] = {{16, 64}, {48, 320}, {256, 1024}, {128, 4096}};
  for (const auto& shape : check_shapes) {
    const int n = shape[0], k = shape[1];
    const Layout l = random_layout(n, k, uint32_t(n * 7 + k));
    std::vector<float> x(static_cast<size_t>(k));
    for (auto& v : x) v = std::normal_distribution<float>(0, 1)(rng) * (rng() % 16 == 0 ? 30.0f : 1.0f);
    std::vector<float> xb(x);  // the engine's x is BF16: round first
    for (auto& v : xb) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000u;
      std::memcpy(&v, &bits, 4);
    }
    float unscale = 1;
    const std::vector<uint32_t> xp = prepare_x(xb, unscale);
    float* y = nullptr;
    CHECK(cudaMalloc(&y, size_t(n) * 4));
    CHECK(cudaMemset(y, 0xFF, size_t(n) * 4));
    const Args a = args_for(l, reinterpret_cast<uint4*>(upload(l.w)), reinterpret_cast<uint2*>(upload(l.s)),
                            upload(l.tile_scale), reinterpret_cast<uint4*>(upload(xp)), unscale, y);
    launch(a);
    CHECK(cudaDeviceSynchronize());
    std::vector<float> got(static_cast<size_t>(n));
    CHECK(cudaMemcpy(got.data(), y, got.size() * 4, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int r = 0; r < n; ++r) {
      double ref = 0, mag = 0;
      for (int c = 0; c < k; ++c) ref += weight(l, r, c) * xb[size_t(c)], mag += std::fabs(weight(l, r, c) * xb[size_t(c)]);
      worst = std::max(worst, std::fabs(got[size_t(r)] - ref) / (mag + 1e-30));
    }
    const bool ok = worst < 1e-4;
    failures += !ok;
    std::printf("check %dx%d: max |y - ref| / sum|w x| = %.2e %s\n", n, k, worst, ok ? "ok" : "FAILED");
  }
  // Timing on Qwen3-8B's projection shapes, copies rotated so that none is served from L2.
  std::printf("| shape | us | GB/s (weights + scales) |\n|---|---|---|\n");
  double total = 0;
  struct Shape { const char* name; int n, k; };
  const Shape shapes[4] = {{"qkv 6144x4096", 6144, 4096}, {"o 4096x4096", 4096, 4096},
                           {"gate_up 24576x4096", 24576, 4096}, {"down 4096x12288", 4096, 12288}};
  for (const Shape& shape : shapes) {
    const char* name = shape.name;
    const int n = shape.n, k = shape.k;
    const double bytes = double(n) * k * 0.5625;
    const int copies = int(std::max(2.0, 512e6 / bytes));
    const Layout l = random_layout(n, k, 5);
    std::vector<float> x(static_cast<size_t>(k));
    for (auto& v : x) v = std::normal_distribution<float>(0, 1)(rng);
    float unscale = 1;
    const uint4* xd = reinterpret_cast<uint4*>(upload(prepare_x(x, unscale)));
    float* y = nullptr;
    CHECK(cudaMalloc(&y, size_t(n) * 4));
    std::vector<Args> as;
    for (int c = 0; c < copies; ++c)
      as.push_back(args_for(l, reinterpret_cast<uint4*>(upload(l.w)), reinterpret_cast<uint2*>(upload(l.s)),
                            upload(l.tile_scale), xd, unscale, y));
    for (const Args& a : as) launch(a);
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    const int reps = 20 * copies;
    CHECK(cudaEventRecord(e0));
    for (int r = 0; r < reps; ++r) launch(as[size_t(r % copies)]);
    CHECK(cudaEventRecord(e1));
    CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    const double us = ms * 1e3 / reps;
    total += us;
    std::printf("| %s | %.1f | %.0f |\n", name, us, bytes / us / 1e3);
    for (const Args& a : as) cudaFree(const_cast<uint4*>(a.w)), cudaFree(const_cast<uint2*>(a.s)), cudaFree(const_cast<float*>(a.tile_scale));
  }
  std::printf("4 projections, 1 row: %.1f us (x preparation not included)\n", total);
  return failures ? 1 : 0;
}
