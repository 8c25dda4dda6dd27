// Which heads of a fused q|k|v product one GEMV block's tiles belong to (16 output rows per tile,
// head_dim / 16 tiles per head). The qkv GEMV's RoPE epilogue (gemv_rope_epilogue.cuh) adds each
// head's share to that head's counter; the block whose share completes a head finishes it.
// Host and device, so that the partition is tested on the CPU (tests/unit/head_tiles_test.cpp).
#pragma once

#include "formats/number_formats.hpp"  // FP4LLM_HD

namespace fp4llm::cuda {

struct BlockHeads {
  int first, last, per_head;  // the block's tiles [first, last); tiles per head

  // Block `block` of blocks of `per_block` consecutive tiles over `row_tiles` tiles.
  FP4LLM_HD BlockHeads(int block, int per_block, int row_tiles, int per_head)
      : first(block * per_block),
        last(block * per_block + per_block < row_tiles ? block * per_block + per_block : row_tiles),
        per_head(per_head) {}
  FP4LLM_HD int first_head() const { return first / per_head; }
  FP4LLM_HD int end_head() const { return (last + per_head - 1) / per_head; }  // one past the last
  // How many of head h's tiles are this block's.
  FP4LLM_HD int tiles_of(int h) const {
    const int lo = first > h * per_head ? first : h * per_head;
    const int hi = last < (h + 1) * per_head ? last : (h + 1) * per_head;
    return hi > lo ? hi - lo : 0;
  }
};

}  // namespace fp4llm::cuda
