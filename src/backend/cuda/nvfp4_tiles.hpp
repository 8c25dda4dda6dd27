// NVFP4 weights rearranged for the tensor-core kernels (nvfp4_linear.cu). Rows are grouped in
// tiles of 16 and columns in chunks of 64 (four NVFP4 blocks); one tile-chunk is 512 bytes in
// which lane L = 4g + t of a warp finds, as one 16-byte load, block t of row g followed by
// block t of row g + 8: exactly the A-fragment values that lane feeds to four m16n8k16 MMAs.
// Its two block scales (rows g and g + 8) sit in a parallel array of 2-byte entries.
// Pure host code, so the layout is tested without a GPU.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/weights.hpp"

namespace fp4llm::cuda {

constexpr int64_t kTileRows = 16;
constexpr int64_t kChunkCols = 64;

struct Nvfp4Tiles {
  int64_t out_features = 0, in_features = 0;  // N, K
  int64_t row_tiles = 0, k_chunks = 0;         // ceil(N / 16), ceil(K / 64)
  std::vector<uint8_t> packed;                 // [row_tiles][k_chunks][32][16]
  std::vector<uint16_t> scales;                // [row_tiles][k_chunks][32]: row g low byte, g+8 high
  std::vector<float> tile_scales;              // [row_tiles]: global scale of the tile's source
};

// Concatenates `parts` along the output dimension (fused q/k/v or gate/up). With more than one
// part each part's rows must be a multiple of 16, so that no tile mixes two global scales.
// Padding rows and columns get code 0 and block scale 0, so they contribute exactly zero.
Nvfp4Tiles make_nvfp4_tiles(std::span<const QuantizedLinear* const> parts);

// The inverse, for tests: weight (row, col) as e2m1 * block_scale * global_scale.
float nvfp4_tiles_value(const Nvfp4Tiles& t, int64_t row, int64_t col);

}  // namespace fp4llm::cuda
