#include "backend/cuda/nvfp4_tiles.hpp"

#include <cstring>

#include "backend/cuda/e2m1_pairs.hpp"
#include "formats/number_formats.hpp"
#include "util/error.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm::cuda {

namespace {

constexpr int64_t kBlock = 16;  // NVFP4 block: 16 values, 8 bytes, one E4M3 scale

size_t tile_index(const Nvfp4Tiles& t, int64_t tile, int64_t chunk) {
  return size_t(tile * t.k_chunks + chunk);
}

// The bits a code contributes to its word, by tile half, value in the block and code
// (e2m1_pairs.hpp's placement; a table so that packing a model costs one OR per code).
struct CodeBits {
  uint32_t bits[2][16][16];
  CodeBits() {
    for (int upper = 0; upper < 2; ++upper)
      for (int v = 0; v < 16; ++v)
        for (uint32_t code = 0; code < 16; ++code) {
          const CodePlace at = code_place(upper, v);
          uint32_t word = 0;
          for (int c = 0; c < 4; ++c) word |= ((code >> c) & 1u) << code_bit(at.slot, at.high, c);
          bits[upper][v][code] = word;
        }
  }
};
const CodeBits& code_bits() {
  static const CodeBits table;
  return table;
}

// Copies one source row's blocks into the tile layout.
void place_row(Nvfp4Tiles& t, const QuantizedLinear& w, int64_t src_row, int64_t dst_row) {
  const auto& table = code_bits().bits;
  const int64_t tile = dst_row / kTileRows, r = dst_row % kTileRows;
  const int64_t g = r % 8, upper = r / 8;  // rows g and g + 8 share a lane
  const int64_t blocks = w.in_features / kBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t chunk = b / 4, lane = g * 4 + b % 4;
    const size_t slot = tile_index(t, tile, chunk) * 32 + size_t(lane);
    const uint8_t* src = w.packed.data() + size_t(src_row * w.in_features / 2 + b * 8);
    uint32_t words[4];
    std::memcpy(words, &t.packed[slot * 16], 16);
    for (int v = 0; v < int(kBlock); ++v)
      words[v / 4] |= table[upper][v][(src[v / 2] >> (4 * (v % 2))) & 0xF];  // value v: word (MMA) v / 4
    std::memcpy(&t.packed[slot * 16], words, 16);
    const uint16_t scale = w.block_scales.data()[size_t(src_row * blocks + b)];
    t.scales[slot] = uint16_t(t.scales[slot] | (scale << (8 * upper)));
  }
}

Nvfp4Tiles empty_tiles(int64_t out_features, int64_t in_features) {
  Nvfp4Tiles t;
  t.out_features = out_features;
  t.in_features = in_features;
  t.row_tiles = (out_features + kTileRows - 1) / kTileRows;
  t.k_chunks = (in_features + kChunkCols - 1) / kChunkCols;
  t.packed.assign(size_t(t.row_tiles * t.k_chunks * 32 * 16), 0);
  t.scales.assign(size_t(t.row_tiles * t.k_chunks * 32), 0);
  t.tile_scales.assign(size_t(t.row_tiles * 2), 1.0f);
  return t;
}

void check_part(const QuantizedLinear& p, int64_t in_features) {
  if (p.in_features != in_features)
    fail("NVFP4 tiles: fused parts have {} and {} input features", in_features, p.in_features);
  if (p.in_features % kBlock != 0) fail("NVFP4 tiles: {} input features is not a multiple of 16", p.in_features);
}

// Rows of one destination tile share lanes (bytes and scale entries), so the work is split by
// whole destination tiles: units of 16 source rows shifted by where row 0 lands in its tile (a
// fused part may start at row 8 of one), each unit filling its own tile (or, for the gated map,
// tile halves of 8 rows that no other unit touches).
template <typename RowMap>
void place_rows(Nvfp4Tiles& t, const QuantizedLinear& p, RowMap dst_row_of) {
  const int64_t shift = dst_row_of(0) % kTileRows;
  const int64_t units = (p.out_features + shift + kTileRows - 1) / kTileRows;
  parallel_for(units, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = std::max<int64_t>(0, begin * kTileRows - shift); r < std::min(end * kTileRows - shift, p.out_features); ++r)
      place_row(t, p, r, dst_row_of(r));
  });
}

}  // namespace

CodePlace code_place(int upper, int v) {
  // MMA A register: row g / g + 8 (upper), values (0, 1) / (2, 3) of the four (v % 4 / 2).
  return {v / 4, upper + 2 * (v % 4 / 2), v % 2};
}

Nvfp4Tiles make_nvfp4_tiles(std::span<const QuantizedLinear* const> parts) {
  if (parts.empty()) fail("NVFP4 tiles: no weight given");
  int64_t rows = 0;
  for (const QuantizedLinear* p : parts) {
    check_part(*p, parts[0]->in_features);
    if (parts.size() > 1 && p->out_features % 8 != 0)
      fail("NVFP4 tiles: fused part with {} rows is not a multiple of 8", p->out_features);
    rows += p->out_features;
  }
  Nvfp4Tiles t = empty_tiles(rows, parts[0]->in_features);
  int64_t first_row = 0;
  for (const QuantizedLinear* p : parts) {
    for (int64_t half = first_row / 8; half * 8 < first_row + p->out_features; ++half)
      t.tile_scales[size_t(half)] = p->global_scale;
    place_rows(t, *p, [first_row](int64_t r) { return first_row + r; });
    first_row += p->out_features;
  }
  return t;
}

Nvfp4Tiles make_gated_nvfp4_tiles(const QuantizedLinear& gate, const QuantizedLinear& up) {
  check_part(gate, gate.in_features);
  check_part(up, gate.in_features);
  if (gate.out_features != up.out_features || gate.out_features % 8 != 0)
    fail("NVFP4 tiles: gate ({} rows) and up ({} rows) must match and be a multiple of 8", gate.out_features,
         up.out_features);
  Nvfp4Tiles t = empty_tiles(2 * gate.out_features, gate.in_features);
  t.gated = true;
  for (int64_t tile = 0; tile < t.row_tiles; ++tile) {
    t.tile_scales[size_t(2 * tile)] = gate.global_scale;
    t.tile_scales[size_t(2 * tile + 1)] = up.global_scale;
  }
  place_rows(t, gate, [](int64_t r) { return r / 8 * kTileRows + r % 8; });
  place_rows(t, up, [](int64_t r) { return r / 8 * kTileRows + 8 + r % 8; });
  return t;
}

float nvfp4_tiles_value(const Nvfp4Tiles& t, int64_t row, int64_t col) {
  const int64_t tile = row / kTileRows, r = row % kTileRows, g = r % 8, upper = r / 8;
  const int64_t b = col / kBlock, chunk = b / 4, lane = g * 4 + b % 4;
  const size_t slot = tile_index(t, tile, chunk) * 32 + size_t(lane);
  const CodePlace at = code_place(int(upper), int(col % kBlock));
  uint32_t word = 0;
  std::memcpy(&word, &t.packed[slot * 16 + size_t(4 * at.word)], 4);
  uint8_t code = 0;
  for (int c = 0; c < 4; ++c) code = uint8_t(code | (((word >> code_bit(at.slot, at.high, c)) & 1u) << c));
  const uint8_t scale = uint8_t(t.scales[slot] >> (8 * upper));
  return e2m1_to_float(code) * e4m3_to_float(scale) * t.tile_scales[size_t(2 * tile + upper)];
}

}  // namespace fp4llm::cuda
