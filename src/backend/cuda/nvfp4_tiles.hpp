// NVFP4 weights rearranged for the tensor-core kernels (nvfp4_linear.cu). Rows are grouped in
// tiles of 16 and columns in chunks of 64 (four NVFP4 blocks); one tile-chunk is 512 bytes in
// which lane L = 4g + t of a warp finds, as one 16-byte load, block t of row g and block t of
// row g + 8: exactly the A-fragment values that lane feeds to four m16n8k16 MMAs. Its two block
// scales (rows g and g + 8) sit in a parallel array of 2-byte entries.
//
// Inside the 16 bytes, word i holds the four A registers of MMA i; the bits of register slot j's
// two codes are spread over the word so that rotations build the BF16 pair (e2m1_pairs.hpp:
// code_bit gives each bit's place, e2m1_pair the kernels' extraction).
//
// Each 8-row half of a tile has its own global scale, so parts can be fused at 8-row
// granularity; the gated layout puts 8 gate rows and the same 8 up rows in one tile, so the
// kernel's epilogue applies the activation without another pass. Pure host code, tested
// without a GPU.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/weights.hpp"

namespace fp4llm::cuda {

constexpr int64_t kTileRows = 16;
constexpr int64_t kChunkCols = 64;

struct Nvfp4Tiles {
  int64_t out_features = 0, in_features = 0;  // N (rows as stored, padding excluded), K
  int64_t row_tiles = 0, k_chunks = 0;         // ceil(N / 16), ceil(K / 64)
  bool gated = false;                          // tile rows 0-7: gate rows, 8-15: the same up rows
  std::vector<uint8_t> packed;                 // [row_tiles][k_chunks][32][16]
  std::vector<uint16_t> scales;                // [row_tiles][k_chunks][32]: row g low byte, g+8 high
  std::vector<float> tile_scales;              // [row_tiles][2]: global scale of rows 0-7, of rows 8-15
};

// Concatenates `parts` along the output dimension (fused q/k/v). With more than one part each
// part's rows must be a multiple of 8, so that no tile half mixes two global scales. Padding rows
// and columns get code 0 and block scale 0, so they contribute exactly zero.
Nvfp4Tiles make_nvfp4_tiles(std::span<const QuantizedLinear* const> parts);

// gate and up ([I, K] each, I a multiple of 8) interleaved by 8 rows: tile i holds gate rows
// 8i..8i+7 then up rows 8i..8i+7.
Nvfp4Tiles make_gated_nvfp4_tiles(const QuantizedLinear& gate, const QuantizedLinear& up);

// The inverse, for tests: stored row `row`, column `col` as e2m1 * block_scale * global_scale.
float nvfp4_tiles_value(const Nvfp4Tiles& t, int64_t row, int64_t col);

// Where value v (0..15) of the 16-value block of tile-half `upper` goes in a lane's 16 bytes:
// word (MMA) v / 4, register slot upper + 2 * (v % 4 / 2), half v % 2 of it.
struct CodePlace {
  int word, slot, high;
};
CodePlace code_place(int upper, int v);

}  // namespace fp4llm::cuda
