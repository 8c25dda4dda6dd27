// A GGUF file (llama.cpp's format), memory-mapped: metadata key/values and tensor infos, every
// length and offset bounds-checked. Version 2 and 3 files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/bytes.hpp"

namespace fp4llm {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9, Q2_K = 10,
  Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30
};

struct GgufTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is the contiguous (input) dimension
  Bytes data;
  int64_t numel() const;
};

class GgufFile {
 public:
  static GgufFile open(const std::filesystem::path& path);
  static GgufFile parse(const Bytes& file, const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  // Metadata as JSON values (arrays of strings/numbers stay arrays; the tokenizer's long lists
  // are kept too).
  const nlohmann::json& metadata() const { return metadata_; }
  const std::map<std::string, GgufTensor>& tensors() const { return tensors_; }

 private:
  std::filesystem::path path_;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::map<std::string, GgufTensor> tensors_;
};

const char* ggml_type_name(GgmlType t);
// Elements per block and bytes per block of a type fp4llm can dequantize; throws otherwise.
std::pair<int64_t, int64_t> ggml_block_layout(GgmlType t);

}  // namespace fp4llm
