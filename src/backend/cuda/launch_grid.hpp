// Grid size for a grid-stride loop over `count` elements: enough blocks to cover them, at most
// 65535 (the loops stride over the rest).
#pragma once

#include <algorithm>
#include <cstdint>

namespace fp4llm::cuda {

inline unsigned grid_for(int64_t count, int threads) {
  return unsigned(std::clamp<int64_t>((count + threads - 1) / threads, 1, 65535));
}

}  // namespace fp4llm::cuda
