// Our conversions against CUDA's own (host builds of __nv_cvt_float_to_fp8, __nv_cvt_float_to_fp4,
// __float2bfloat16_rn): the kernels of the CUDA backend must round exactly as those do.
#include <cuda_bf16.h>
#include <cuda_fp4.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <random>

#include "formats/number_formats.hpp"

using namespace fp4llm;

namespace {
std::vector<float> probe_values() {
  std::vector<float> v = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 448.0f, 464.0f, 1e30f, 1e-30f,
                          bits_float(1), bits_float(0x807FFFFF)};
  for (int c = 0; c < 256; ++c) {  // every E4M3 value, the midpoints and their neighbours
    const float a = e4m3_to_float(uint8_t(c)), b = e4m3_to_float(uint8_t((c + 1) & 0xFF));
    v.insert(v.end(), {a, std::nextafter(a, INFINITY), std::nextafter(a, -INFINITY)});
    if (std::isfinite(a) && std::isfinite(b)) {
      const float m = (a + b) / 2;
      v.insert(v.end(), {m, std::nextafter(m, INFINITY), std::nextafter(m, -INFINITY)});
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) v.push_back(bits_float(uint32_t(rng())));
  std::uniform_real_distribution<float> u(-8, 8);
  for (int i = 0; i < 200000; ++i) v.push_back(u(rng));
  return v;
}
}  // namespace

TEST(FormatsVsCudaHost, E4M3MatchesNvCvtSatfinite) {
  for (float x : probe_values())
    ASSERT_EQ(float_to_e4m3(x), __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3))
        << "x=" << x << " bits=" << std::hex << float_bits(x);
}

TEST(FormatsVsCudaHost, E4M3DecodeMatchesNvCvt) {
  for (int c = 0; c < 256; ++c) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(c), __NV_E4M3);
    const float ref = __half2float(__half(h));
    const float got = e4m3_to_float(uint8_t(c));
    if (std::isnan(ref)) ASSERT_TRUE(std::isnan(got)) << c;
    else ASSERT_EQ(got, ref) << c;
  }
}

TEST(FormatsVsCudaHost, E2M1MatchesNvCvtRoundNearest) {
  for (float x : probe_values()) {
    // CUDA gives -0.0 (code 0x8) for -0.0 itself; the ModelOpt cast we follow tests x < 0, so
    // -0.0 encodes as +0: the only value where the two casts differ, and both decode to zero.
    if (x == 0.0f) continue;
    ASSERT_EQ(float_to_e2m1(x), __nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundNearest))
        << "x=" << x << " bits=" << std::hex << float_bits(x);
  }
}

TEST(FormatsVsCudaHost, Bf16MatchesFloat2Bfloat16Rn) {
  for (float x : probe_values()) {
    const __nv_bfloat16 b = __float2bfloat16_rn(x);
    uint16_t ref;
    std::memcpy(&ref, &b, 2);
    if (std::isnan(x)) ASSERT_TRUE(std::isnan(bf16_to_float(float_to_bf16(x))));
    else ASSERT_EQ(float_to_bf16(x), ref) << x;
  }
}

TEST(FormatsVsCudaHost, F16DecodeMatchesHalf2Float) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    __half_raw r;
    r.x = uint16_t(h);
    const float ref = __half2float(__half(r));
    const float got = f16_to_float(uint16_t(h));
    if (std::isnan(ref)) ASSERT_TRUE(std::isnan(got)) << h;
    else ASSERT_EQ(got, ref) << h;
  }
}

TEST(FormatsVsCudaHost, E2M1DecodeMatchesNvCvt) {
  for (int c = 0; c < 16; ++c) {
    const __half_raw h = __nv_cvt_fp4_to_halfraw(__nv_fp4_storage_t(c), __NV_E2M1);
    ASSERT_EQ(e2m1_to_float(uint8_t(c)), __half2float(__half(h))) << c;
  }
}
