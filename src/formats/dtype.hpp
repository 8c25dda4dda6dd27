// Element types of checkpoint tensors, named as safetensors names them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fp4llm {

enum class DType : uint8_t { BF16, F16, F32, F64, U8, I8, I16, I32, I64, BOOL, F8_E4M3 };

std::string_view dtype_name(DType t);
size_t dtype_size(DType t);
std::optional<DType> parse_dtype(std::string_view safetensors_name);

}  // namespace fp4llm
