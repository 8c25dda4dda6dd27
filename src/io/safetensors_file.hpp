// One .safetensors file, memory-mapped, with its header parsed and every entry bounds-checked.
// Format: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data;
// offsets are relative to the first byte after the header.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "formats/dtype.hpp"
#include "util/bytes.hpp"

namespace fp4llm {

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  Bytes data;
  std::filesystem::path file;

  int64_t numel() const;
  std::string describe() const;  // "NAME (BF16 [4, 8]) in FILE"
};

class SafetensorsFile {
 public:
  // Throws Error naming the file (and tensor) for a truncated, corrupt or inconsistent file.
  static SafetensorsFile open(const std::filesystem::path& path);
  // Parses the bytes of a whole file; `path` only names it in errors (the fuzzer calls this).
  static SafetensorsFile parse(const Bytes& file, const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::filesystem::path path_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace fp4llm
