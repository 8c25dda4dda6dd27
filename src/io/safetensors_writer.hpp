// Writing .safetensors files, one or a sharded set with model.safetensors.index.json, in the
// layout the Hugging Face `safetensors` library reads.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "formats/dtype.hpp"
#include "util/bytes.hpp"

namespace fp4llm {

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  Bytes data;
};

// Writes one file (through a temporary name, renamed when complete).
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Collects tensors into shards of at most `max_shard_bytes` (a single larger tensor gets its own)
// and names them model-0000i-of-0000N.safetensors with an index, or model.safetensors when one
// shard suffices.
class ShardedWriter {
 public:
  ShardedWriter(std::filesystem::path dir, uint64_t max_shard_bytes);
  void add(TensorToWrite tensor);
  // Writes the last shard, renames the shards and writes the index. Returns the files written.
  std::vector<std::filesystem::path> finish();

 private:
  void flush();
  std::filesystem::path dir_;
  uint64_t max_shard_bytes_;
  std::vector<TensorToWrite> pending_;
  uint64_t pending_bytes_ = 0, total_bytes_ = 0;
  std::vector<std::filesystem::path> shards_;               // temporary names, in order
  std::vector<std::vector<std::string>> shard_tensor_names_;
};

}  // namespace fp4llm
