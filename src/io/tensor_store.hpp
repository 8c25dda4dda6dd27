// All tensors of a Hugging Face model folder: one model.safetensors, a sharded set listed by
// model.safetensors.index.json, or the folder's *.safetensors files.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors_file.hpp"

namespace fp4llm {

class TensorStore {
 public:
  static TensorStore open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::vector<std::filesystem::path>& files() const { return files_; }
  uint64_t total_bytes() const;

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorView* find(const std::string& name) const;
  // Throws Error naming the tensor and the folder when it is missing.
  const TensorView& get(const std::string& name) const;

 private:
  void add_file(const std::filesystem::path& path);
  std::filesystem::path dir_;
  std::vector<std::filesystem::path> files_;
  std::map<std::string, TensorView> tensors_;
};

// Reads a scalar stored as F32, BF16 or F16 with one element (shape [] or [1]).
float read_scalar(const TensorView& t);
// Converts elements [offset, offset+count) of a BF16, F16 or F32 tensor to float32.
void read_floats(const TensorView& t, int64_t offset, int64_t count, float* out);
std::vector<float> read_floats(const TensorView& t);
// Throws Error naming the tensor unless its dtype and shape are as expected.
void expect_tensor(const TensorView& t, DType dtype, const std::vector<int64_t>& shape);

}  // namespace fp4llm
