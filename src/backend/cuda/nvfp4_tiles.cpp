#include "backend/cuda/nvfp4_tiles.hpp"

#include "formats/number_formats.hpp"
#include "util/error.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm::cuda {

namespace {

constexpr int64_t kBlock = 16;  // NVFP4 block: 16 values, 8 bytes, one E4M3 scale

size_t tile_index(const Nvfp4Tiles& t, int64_t tile, int64_t chunk) {
  return size_t(tile * t.k_chunks + chunk);
}

// Copies one source row's blocks into the tile layout.
void place_row(Nvfp4Tiles& t, const QuantizedLinear& w, int64_t src_row, int64_t dst_row) {
  const int64_t tile = dst_row / kTileRows, r = dst_row % kTileRows;
  const int64_t g = r % 8, upper = r / 8;  // rows g and g + 8 share a lane
  const int64_t blocks = w.in_features / kBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t chunk = b / 4, lane = g * 4 + b % 4;
    const size_t slot = tile_index(t, tile, chunk) * 32 + size_t(lane);
    const uint8_t* src = w.packed.data() + size_t(src_row * w.in_features / 2 + b * 8);
    std::copy_n(src, 8, &t.packed[slot * 16 + size_t(upper * 8)]);
    const uint16_t scale = w.block_scales.data()[size_t(src_row * blocks + b)];
    t.scales[slot] = uint16_t(t.scales[slot] | (scale << (8 * upper)));
  }
}

}  // namespace

Nvfp4Tiles make_nvfp4_tiles(std::span<const QuantizedLinear* const> parts) {
  if (parts.empty()) fail("NVFP4 tiles: no weight given");
  Nvfp4Tiles t;
  t.in_features = parts[0]->in_features;
  for (const QuantizedLinear* p : parts) {
    if (p->in_features != t.in_features)
      fail("NVFP4 tiles: fused parts have {} and {} input features", t.in_features, p->in_features);
    if (p->in_features % kBlock != 0) fail("NVFP4 tiles: {} input features is not a multiple of 16", p->in_features);
    if (parts.size() > 1 && p->out_features % kTileRows != 0)
      fail("NVFP4 tiles: fused part with {} rows is not a multiple of 16", p->out_features);
    t.out_features += p->out_features;
  }
  t.row_tiles = (t.out_features + kTileRows - 1) / kTileRows;
  t.k_chunks = (t.in_features + kChunkCols - 1) / kChunkCols;
  t.packed.assign(size_t(t.row_tiles * t.k_chunks * 32 * 16), 0);
  t.scales.assign(size_t(t.row_tiles * t.k_chunks * 32), 0);
  t.tile_scales.assign(size_t(t.row_tiles), 1.0f);
  int64_t first_row = 0;
  for (const QuantizedLinear* p : parts) {
    for (int64_t tile = first_row / kTileRows; tile * kTileRows < first_row + p->out_features; ++tile)
      t.tile_scales[size_t(tile)] = p->global_scale;
    // Rows of one tile share lanes: split the work by whole tiles.
    const int64_t tiles = (p->out_features + kTileRows - 1) / kTileRows;
    parallel_for(tiles, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin * kTileRows; r < std::min(end * kTileRows, p->out_features); ++r)
        place_row(t, *p, r, first_row + r);
    });
    first_row += p->out_features;
  }
  return t;
}

float nvfp4_tiles_value(const Nvfp4Tiles& t, int64_t row, int64_t col) {
  const int64_t tile = row / kTileRows, r = row % kTileRows, g = r % 8, upper = r / 8;
  const int64_t b = col / kBlock, chunk = b / 4, lane = g * 4 + b % 4;
  const size_t slot = tile_index(t, tile, chunk) * 32 + size_t(lane);
  const int64_t within = col % kBlock;
  const uint8_t byte = t.packed[slot * 16 + size_t(upper * 8 + within / 2)];
  const uint8_t code = within % 2 ? byte >> 4 : byte & 0xF;
  const uint8_t scale = uint8_t(t.scales[slot] >> (8 * upper));
  return e2m1_to_float(code) * e4m3_to_float(scale) * t.tile_scales[size_t(tile)];
}

}  // namespace fp4llm::cuda
