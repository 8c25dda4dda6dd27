// Exhaustive checks of the scalar formats against definitions written out here from the
// format specifications (OCP FP8 E4M3FN, OCP MX E2M1), independent of the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "formats/number_formats.hpp"

using namespace fp4llm;

namespace {

// E4M3FN by its definition: 1 sign, 4 exponent bits (bias 7), 3 mantissa bits, S.1111.111 = NaN.
double e4m3_reference(int code) {
  const int sign = code >> 7, exp = (code >> 3) & 15, man = code & 7;
  if (exp == 15 && man == 7) return NAN;
  const double mag = exp == 0 ? std::ldexp(man / 8.0, -6) : std::ldexp(1.0 + man / 8.0, exp - 7);
  return sign ? -mag : mag;
}

double e2m1_reference(int code) {
  const int sign = code >> 3, exp = (code >> 1) & 3, man = code & 1;
  const double mag = exp == 0 ? man * 0.5 : std::ldexp(1.0 + man / 2.0, exp - 1);
  return sign ? -mag : mag;
}

// Nearest representable value by exhaustive search, ties to the even code, saturating.
int nearest_code(double x, int num_codes, double (*value)(int), double max) {
  if (std::isnan(x)) return -1;
  const double a = std::min(std::fabs(x), max);
  int best = 0;
  double best_err = INFINITY;
  for (int c = 0; c < num_codes / 2; ++c) {  // non-negative codes only
    const double v = value(c);
    if (std::isnan(v)) continue;
    const double err = std::fabs(v - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) best = c, best_err = err;
  }
  return best;
}

}  // namespace

TEST(E4M3, DecodesAll256Codes) {
  for (int c = 0; c < 256; ++c) {
    const double ref = e4m3_reference(c);
    const float got = e4m3_to_float(uint8_t(c));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got)) << c;
    } else {
      EXPECT_EQ(double(got), ref) << "code " << c;
      EXPECT_EQ(std::signbit(got), c >= 128) << c;
    }
  }
  EXPECT_EQ(e4m3_to_float(0x7E), kE4M3Max);
  EXPECT_EQ(e4m3_to_float(0x01), kE4M3MinSubnormal);
}

TEST(E4M3, EveryCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    const float v = e4m3_to_float(uint8_t(c));
    const int expected = std::isnan(v) ? 0x7F : c;  // both NaN codes encode back to 0x7F
    EXPECT_EQ(float_to_e4m3(v), expected) << "code " << c;
  }
}

TEST(E4M3, TiesGoToEvenAndNeighboursRoundCorrectly) {
  for (int c = 0; c < 0x7E; ++c) {
    const float lo = e4m3_to_float(uint8_t(c)), hi = e4m3_to_float(uint8_t(c + 1));
    const float mid = (lo + hi) / 2;  // exact in float32
    const int even = (c % 2 == 0) ? c : c + 1;
    EXPECT_EQ(float_to_e4m3(mid), even) << "tie between codes " << c << " and " << c + 1;
    EXPECT_EQ(float_to_e4m3(-mid), even | 0x80);
    EXPECT_EQ(float_to_e4m3(std::nextafter(mid, 0.0f)), c);
    EXPECT_EQ(float_to_e4m3(std::nextafter(mid, 1e9f)), c + 1);
  }
}

TEST(E4M3, SaturatesAndHandlesSpecials) {
  EXPECT_EQ(float_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(463.99f), 0x7E);
  EXPECT_EQ(float_to_e4m3(464.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(float_to_e4m3(INFINITY), 0x7E);
  EXPECT_EQ(float_to_e4m3(-INFINITY), 0xFE);
  EXPECT_EQ(float_to_e4m3(NAN), 0x7F);
  EXPECT_EQ(float_to_e4m3(-NAN), 0x7F);
  EXPECT_EQ(float_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(float_to_e4m3(-0.0f), 0x80);
  EXPECT_EQ(float_to_e4m3(1e-30f), 0x00);           // underflows to +0
  EXPECT_EQ(float_to_e4m3(kE4M3MinSubnormal / 2), 0x00);  // tie between 0 and 2^-9: even is 0
  EXPECT_EQ(float_to_e4m3(kE4M3MinSubnormal * 0.75f), 0x01);
  EXPECT_EQ(float_to_e4m3(kE4M3MinSubnormal * 1.5f), 0x02);  // tie 1 / 2: even is 2
}

TEST(E4M3, RandomValuesMatchExhaustiveNearest) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<double> log_mag(-12, 10);
  for (int i = 0; i < 200000; ++i) {
    const float x = float(std::exp2(log_mag(rng))) * (rng() & 1 ? -1.0f : 1.0f);
    const int ref = nearest_code(x, 256, e4m3_reference, 448.0);
    EXPECT_EQ(float_to_e4m3(x), x < 0 ? (ref | 0x80) : ref) << x;
  }
}

TEST(E2M1, DecodesAll16Codes) {
  const float expected[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(double(e2m1_to_float(uint8_t(c))), e2m1_reference(c)) << c;
    EXPECT_EQ(std::fabs(e2m1_to_float(uint8_t(c))), expected[c & 7]);
  }
}

TEST(E2M1, EveryCodeRoundTrips) {
  for (int c = 0; c < 16; ++c) EXPECT_EQ(float_to_e2m1(e2m1_to_float(uint8_t(c))), c == 8 ? 0 : c) << c;
}

TEST(E2M1, TiesSaturationAndSigns) {
  // Midpoints and the even code each rounds to (ModelOpt's cast: ties to even).
  const float mids[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  const int tie_code[7] = {0, 2, 2, 4, 4, 6, 6};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(float_to_e2m1(mids[i]), tie_code[i]) << mids[i];
    EXPECT_EQ(float_to_e2m1(-mids[i]), tie_code[i] | 8) << -mids[i];
    EXPECT_EQ(float_to_e2m1(std::nextafter(mids[i], 0.0f)), i) << mids[i];
    EXPECT_EQ(float_to_e2m1(std::nextafter(mids[i], 10.0f)), i + 1) << mids[i];
  }
  EXPECT_EQ(float_to_e2m1(6.5f), 7);
  EXPECT_EQ(float_to_e2m1(1e30f), 7);
  EXPECT_EQ(float_to_e2m1(-INFINITY), 15);
  EXPECT_EQ(float_to_e2m1(NAN), 7);
  EXPECT_EQ(float_to_e2m1(-0.1f), 8);  // negative values that round to zero keep the sign bit
  EXPECT_EQ(float_to_e2m1(-0.0f), 0);  // but -0.0 is not < 0
}

TEST(E2M1, RandomValuesMatchExhaustiveNearest) {
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> u(-8, 8);
  for (int i = 0; i < 100000; ++i) {
    const float x = u(rng);
    const int ref = nearest_code(x, 16, e2m1_reference, 6.0);
    EXPECT_EQ(float_to_e2m1(x), x < 0 ? (ref | 8) : ref) << x;
  }
}

TEST(BF16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(bits_float(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(float_to_bf16(bits_float(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(float_to_bf16(bits_float(0x3F808001)), 0x3F81);
  EXPECT_EQ(float_to_bf16(INFINITY), 0x7F80);
  EXPECT_EQ(float_to_bf16(bits_float(0x7F7FFFFF)), 0x7F80);  // overflows to inf, as RNE must
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(bits_float(0x7F800001)))));  // stays NaN
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float v = bf16_to_float(uint16_t(b));
    if (!std::isnan(v)) {
      EXPECT_EQ(float_to_bf16(v), b);
    }
  }
}

TEST(F16, DecodesAllCodes) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    double ref;
    if (exp == 31) ref = man ? NAN : INFINITY;
    else if (exp == 0) ref = std::ldexp(man / 1024.0, -14);
    else ref = std::ldexp(1.0 + man / 1024.0, exp - 15);
    if (sign) ref = -ref;
    const float got = f16_to_float(uint16_t(h));
    if (std::isnan(ref)) EXPECT_TRUE(std::isnan(got)) << h;
    else EXPECT_EQ(double(got), ref) << h;
  }
}

// The per-token FP8 scale: the smallest step of the grid 2^(k/8) at or above amax / 448, found
// here from the grid's values in double.
TEST(E4M3, TokenScaleIsTheNextEighthPowerOfTwo) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> exponent(-120.0, 120.0);
  std::vector<float> amax = {448.0f, 896.0f, 447.99997f, 448.00003f, 1.0f, 3.5f, 7.0f * 1024.0f, 488.5475f, 1e-38f};
  for (int i = 0; i < 20000; ++i) amax.push_back(float(std::exp2(exponent(rng))));
  for (float a : amax) {
    const double q = double(a / kE4M3Max);  // the float quotient both backends form
    const float s = e4m3_token_scale(a);
    if (q < std::ldexp(1.0, -126)) {
      EXPECT_EQ(double(s), std::ldexp(1.0, -126)) << a;
      continue;
    }
    // The candidates 2^(k/8) (rounded to float) x 2^e around q; the answer is the least >= q.
    int e = 0;
    std::frexp(q, &e);  // q in [2^(e-1), 2^e)
    double want = INFINITY;
    for (int p = e - 2; p <= e; ++p)
      for (int k = 0; k <= 8; ++k) {
        const double c = std::ldexp(double(float(std::exp2(k / 8.0))), p);
        if (c >= q) want = std::min(want, c);
      }
    EXPECT_EQ(double(s), want) << a;
  }
  EXPECT_EQ(e4m3_token_scale(0.0f), 1.0f);
  EXPECT_EQ(e4m3_token_scale(std::nanf("")), 1.0f);
}
