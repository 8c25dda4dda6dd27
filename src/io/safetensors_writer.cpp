#include "io/safetensors_writer.hpp"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/json_file.hpp"

namespace fp4llm {

namespace fs = std::filesystem;
using nlohmann::json;

void write_safetensors(const fs::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= uint64_t(d);
    if (numel * dtype_size(t.dtype) != t.data.size())
      fail("writing {}: tensor '{}' has {} bytes, its shape needs {}", path.string(), t.name,
           t.data.size(), numel * dtype_size(t.dtype));
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // keeps the data 8-byte aligned, as the library does
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream out(tmp, std::ios::binary);
  if (!out) fail("cannot create {}", tmp.string());
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const auto& t : tensors)
    out.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size()));
  out.close();
  if (!out) fail("cannot write {} (disk full?)", tmp.string());
  fs::rename(tmp, path);
}

ShardedWriter::ShardedWriter(fs::path dir, uint64_t max_shard_bytes)
    : dir_(std::move(dir)), max_shard_bytes_(max_shard_bytes) {}

void ShardedWriter::add(TensorToWrite tensor) {
  if (!pending_.empty() && pending_bytes_ + tensor.data.size() > max_shard_bytes_) flush();
  pending_bytes_ += tensor.data.size();
  total_bytes_ += tensor.data.size();
  pending_.push_back(std::move(tensor));
}

void ShardedWriter::flush() {
  if (pending_.empty()) return;
  const fs::path tmp = dir_ / fmt::format("shard-{:05d}.safetensors.partial", shards_.size() + 1);
  write_safetensors(tmp, pending_, {{"format", "pt"}});
  std::vector<std::string> names;
  for (const auto& t : pending_) names.push_back(t.name);
  shards_.push_back(tmp);
  shard_tensor_names_.push_back(std::move(names));
  pending_.clear();
  pending_bytes_ = 0;
}

std::vector<fs::path> ShardedWriter::finish() {
  flush();
  std::vector<fs::path> written;
  if (shards_.size() == 1) {
    written.push_back(dir_ / "model.safetensors");
    fs::rename(shards_[0], written[0]);
    return written;
  }
  json weight_map = json::object();
  for (size_t i = 0; i < shards_.size(); ++i) {
    const std::string name =
        fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards_.size());
    fs::rename(shards_[i], dir_ / name);
    written.push_back(dir_ / name);
    for (const auto& t : shard_tensor_names_[i]) weight_map[t] = name;
  }
  write_json_file(dir_ / "model.safetensors.index.json",
                  {{"metadata", {{"total_size", total_bytes_}}}, {"weight_map", weight_map}});
  return written;
}

}  // namespace fp4llm
