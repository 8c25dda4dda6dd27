#include "io/gguf_dequant.hpp"

#include <cstring>

#include "formats/number_formats.hpp"
#include "util/error.hpp"

namespace fp4llm {

namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_float(h);
}

// Q8_0: 32 values = f16 d, 32 x int8.
void q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int i = 0; i < 32; ++i) y[i] = float(int8_t(b[2 + i])) * d;
}

// Q5_0: 32 values = f16 d, 32 high bits, 16 bytes of nibbles (values 0-15 low, 16-31 high);
// y = d * (q - 16).
void q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (int i = 0; i < 32; ++i) {
    const int low = (b[6 + i % 16] >> (4 * (i / 16))) & 0x0F;
    const int high = (qh >> i) & 1;
    y[i] = d * float((low | (high << 4)) - 16);
  }
}

// Q4_K: 256 values = f16 d, f16 dmin, 12 bytes of eight 6-bit (scale, min) pairs, 128 bytes of
// nibbles; sub-block j (32 values) is y = (d * scale_j) * q - (dmin * min_j).
void q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* s = b + 4;
  const uint8_t* qs = b + 16;
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 0x3F;
    mn[j] = s[j + 4] & 0x3F;
    sc[j + 4] = uint8_t((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
    mn[j + 4] = uint8_t((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
  }
  for (int j = 0; j < 8; ++j) {
    const float scale = d * float(sc[j]), min = dmin * float(mn[j]);
    const uint8_t* q = qs + (j / 2) * 32;
    const int shift = (j % 2) * 4;
    for (int i = 0; i < 32; ++i) y[j * 32 + i] = scale * float((q[i] >> shift) & 0x0F) - min;
  }
}

// Q6_K: 256 values = 128 bytes low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, f16 d;
// y = (d * scale_{k/16}) * (q - 32).
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int k = 0; k < 256; ++k) {
    const int half = k / 128, r = k % 128;
    const int low = (ql[half * 64 + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (qh[half * 32 + r % 32] >> (2 * (r / 32))) & 0x03;
    y[k] = (d * float(sc[k / 16])) * float((low | (high << 4)) - 32);
  }
}

}  // namespace

void gguf_dequantize_row(const GgufTensor& t, int64_t row, float* out) {
  const auto [block, block_bytes] = ggml_block_layout(t.type);
  const int64_t cols = t.dims[0];
  const int64_t rows = t.numel() / cols;
  if (row < 0 || row >= rows) fail("{}: row {} out of range", t.name, row);
  const uint8_t* p = t.data.data() + row * (cols / block) * block_bytes;
  for (int64_t c = 0; c < cols; c += block, p += block_bytes) {
    switch (t.type) {
      case GgmlType::F32: std::memcpy(out + c, p, 4); break;
      case GgmlType::F16: out[c] = f16_at(p); break;
      case GgmlType::BF16: {
        uint16_t v;
        std::memcpy(&v, p, 2);
        out[c] = bf16_to_float(v);
        break;
      }
      case GgmlType::Q8_0: q8_0(p, out + c); break;
      case GgmlType::Q5_0: q5_0(p, out + c); break;
      case GgmlType::Q4_K: q4_k(p, out + c); break;
      case GgmlType::Q6_K: q6_k(p, out + c); break;
      default: fail("{}: unsupported type", t.name);
    }
  }
}

}  // namespace fp4llm
