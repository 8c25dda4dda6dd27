#include "io/gguf_file.hpp"

#include <cstring>
#include <limits>

#include "util/error.hpp"
#include "util/mapped_file.hpp"

namespace fp4llm {

using nlohmann::json;

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

const char* ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::BF16: return "BF16";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q4_K: return "Q4_K";
    case GgmlType::Q6_K: return "Q6_K";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q4_1: return "Q4_1";
    case GgmlType::Q5_0: return "Q5_0";
    case GgmlType::Q5_1: return "Q5_1";
    case GgmlType::Q2_K: return "Q2_K";
    case GgmlType::Q3_K: return "Q3_K";
    case GgmlType::Q5_K: return "Q5_K";
    default: return "unknown";
  }
}

std::pair<int64_t, int64_t> ggml_block_layout(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return {1, 4};
    case GgmlType::F16: return {1, 2};
    case GgmlType::BF16: return {1, 2};
    case GgmlType::Q8_0: return {32, 34};
    case GgmlType::Q5_0: return {32, 22};
    case GgmlType::Q4_K: return {256, 144};
    case GgmlType::Q6_K: return {256, 210};
    default:
      fail("GGUF tensor type {} ({}) is not supported; fp4llm reads F32, F16, BF16, Q8_0, Q5_0, "
           "Q4_K and Q6_K",
           ggml_type_name(t), uint32_t(t));
  }
}

namespace {

// Sequential reader over the file bytes; every read is checked against the end.
class Cursor {
 public:
  Cursor(const Bytes& b, const std::filesystem::path& path) : b_(b), path_(path) {}
  template <typename T>
  T read() {
    need(sizeof(T), "a number");
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string() {
    const uint64_t n = read<uint64_t>();
    need(n, "a string");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }
  void need(uint64_t n, const char* what) const {
    if (n > b_.size() - pos_)
      fail("{}: truncated GGUF file: {} at byte {} runs past the end ({} bytes)", path_.string(),
           what, pos_, b_.size());
  }
  size_t pos() const { return pos_; }

 private:
  const Bytes& b_;
  const std::filesystem::path& path_;
  size_t pos_ = 0;
};

json read_value(Cursor& c, uint32_t type, int depth, const std::string& key);

json read_array(Cursor& c, int depth, const std::string& key) {
  const uint32_t type = c.read<uint32_t>();
  const uint64_t n = c.read<uint64_t>();
  c.need(n, "an array");  // every element takes at least one byte: bounds n before reserving
  json a = json::array();
  for (uint64_t i = 0; i < n; ++i) a.push_back(read_value(c, type, depth + 1, key));
  return a;
}

json read_value(Cursor& c, uint32_t type, int depth, const std::string& key) {
  if (depth > 2) fail("GGUF metadata '{}': arrays nested too deeply", key);
  switch (type) {
    case 0: return c.read<uint8_t>();
    case 1: return c.read<int8_t>();
    case 2: return c.read<uint16_t>();
    case 3: return c.read<int16_t>();
    case 4: return c.read<uint32_t>();
    case 5: return c.read<int32_t>();
    case 6: return c.read<float>();
    case 7: return c.read<uint8_t>() != 0;
    case 8: return c.string();
    case 9: return read_array(c, depth, key);
    case 10: return c.read<uint64_t>();
    case 11: return c.read<int64_t>();
    case 12: return c.read<double>();
    default: fail("GGUF metadata '{}': unknown value type {}", key, type);
  }
}

}  // namespace

GgufFile GgufFile::parse(const Bytes& file, const std::filesystem::path& path) {
  Cursor c(file, path);
  c.need(4, "the magic");
  if (std::memcmp(file.data(), "GGUF", 4) != 0) fail("{}: not a GGUF file (bad magic)", path.string());
  c.read<uint32_t>();
  const uint32_t version = c.read<uint32_t>();
  if (version != 2 && version != 3) fail("{}: GGUF version {} is not supported (2 or 3)", path.string(), version);
  const uint64_t n_tensors = c.read<uint64_t>(), n_kv = c.read<uint64_t>();
  c.need(n_kv, "the metadata");
  c.need(n_tensors, "the tensor infos");

  GgufFile g;
  g.path_ = path;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = c.string();
    const uint32_t type = c.read<uint32_t>();
    g.metadata_[key] = read_value(c, type, 0, key);
  }
  struct Info {
    GgufTensor t;
    uint64_t offset;
  };
  std::vector<Info> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Info info;
    info.t.name = c.string();
    const uint32_t n_dims = c.read<uint32_t>();
    if (n_dims == 0 || n_dims > 4) fail("{}: tensor '{}' has {} dimensions", path.string(), info.t.name, n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.read<uint64_t>();
      if (dim == 0 || dim > (uint64_t(1) << 40))
        fail("{}: tensor '{}' has dimension {}", path.string(), info.t.name, dim);
      info.t.dims.push_back(int64_t(dim));
    }
    info.t.type = GgmlType(c.read<uint32_t>());
    info.offset = c.read<uint64_t>();
    infos.push_back(std::move(info));
  }
  uint64_t alignment = 32;
  if (const auto a = g.metadata_.find("general.alignment"); a != g.metadata_.end()) {
    if (!a->is_number_unsigned() || a->get<uint64_t>() == 0 || a->get<uint64_t>() > 65536)
      fail("{}: general.alignment {} is invalid", path.string(), a->dump());
    alignment = a->get<uint64_t>();
  }
  const uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  if (data_start > file.size()) fail("{}: truncated GGUF file: no tensor data", path.string());
  const uint64_t data_size = file.size() - data_start;
  for (auto& info : infos) {
    const auto [block, block_bytes] = ggml_block_layout(info.t.type);
    const std::string where = path.string() + ": tensor '" + info.t.name + "'";
    if (info.t.dims[0] % block != 0)
      fail("{}: row of {} elements is not a whole number of {} blocks", where, info.t.dims[0],
           ggml_type_name(info.t.type));
    uint64_t rows = 1;
    for (size_t d = 1; d < info.t.dims.size(); ++d) {
      if (rows > (uint64_t(1) << 40) / uint64_t(info.t.dims[d])) fail("{}: too large", where);
      rows *= uint64_t(info.t.dims[d]);
    }
    const uint64_t bytes = rows * uint64_t(info.t.dims[0] / block) * uint64_t(block_bytes);
    if (info.offset > data_size || bytes > data_size - info.offset)
      fail("{}: data [{}, {}) runs past the end of the file's data ({} bytes); truncated?", where,
           info.offset, info.offset + bytes, data_size);
    info.t.data = file.slice(size_t(data_start + info.offset), size_t(bytes));
    if (!g.tensors_.emplace(info.t.name, info.t).second) fail("{}: tensor appears twice", where);
  }
  return g;
}

GgufFile GgufFile::open(const std::filesystem::path& path) { return parse(map_file(path), path); }

}  // namespace fp4llm
