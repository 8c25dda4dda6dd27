#include "io/safetensors_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/mapped_file.hpp"

namespace fp4llm {

using nlohmann::json;

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::describe() const {
  return fmt::format("{} ({} [{}]) in {}", name, dtype_name(dtype), fmt::join(shape, ", "),
                     file.string());
}

namespace {

// The safetensors library refuses headers over 100 MB; so do we, before allocating anything.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

uint64_t non_negative_integer(const json& v, const std::string& what) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) fail("{} is not an integer", what);
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0) fail("{} is negative", what);
  return v.get<uint64_t>();
}

TensorView parse_entry(const std::string& name, const json& entry, const Bytes& data,
                       const std::filesystem::path& path) {
  const std::string where = fmt::format("{}: tensor '{}'", path.string(), name);
  if (!entry.is_object()) fail("{}: header entry is not an object", where);
  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) fail("{}: missing dtype", where);
  const auto dtype = parse_dtype(dtype_it->get<std::string>());
  if (!dtype) fail("{}: unsupported dtype '{}'", where, dtype_it->get<std::string>());

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) fail("{}: missing shape", where);
  std::vector<int64_t> shape;
  uint64_t numel = 1;
  for (const auto& d : *shape_it) {
    const uint64_t dim = non_negative_integer(d, where + " shape entry");
    if (dim > uint64_t(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim / 8))
      fail("{}: shape [{}] is too large", where, shape_it->dump());
    numel *= dim;
    shape.push_back(int64_t(dim));
  }

  const auto off_it = entry.find("data_offsets");
  if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2)
    fail("{}: data_offsets must be [begin, end]", where);
  const uint64_t begin = non_negative_integer((*off_it)[0], where + " data_offsets");
  const uint64_t end = non_negative_integer((*off_it)[1], where + " data_offsets");
  if (begin > end) fail("{}: data_offsets [{}, {}] are reversed", where, begin, end);
  if (end > data.size())
    fail("{}: data_offsets end {} is past the end of the data ({} bytes); the file is truncated "
         "or corrupt",
         where, end, data.size());
  const uint64_t expected = numel * dtype_size(*dtype);
  if (end - begin != expected)
    fail("{}: holds {} bytes but {} {} needs {}", where, end - begin, dtype_name(*dtype),
         shape_it->dump(), expected);
  return TensorView{name, *dtype, std::move(shape), data.slice(begin, end - begin), path};
}

}  // namespace

SafetensorsFile SafetensorsFile::parse(const Bytes& file, const std::filesystem::path& path) {
  if (file.size() < 8)
    fail("{}: truncated safetensors file ({} bytes, the header length alone is 8)", path.string(),
         file.size());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file.data()[i];
  if (header_len > kMaxHeaderBytes)
    fail("{}: header length {} is over the 100 MB limit; not a safetensors file?", path.string(),
         header_len);
  if (header_len > file.size() - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes); truncated?",
         path.string(), header_len, file.size());

  json header;
  try {
    header = json::parse(file.data() + 8, file.data() + 8 + header_len);
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON: {}", path.string(), e.what());
  }
  if (!header.is_object()) fail("{}: header is not a JSON object", path.string());

  SafetensorsFile out;
  const Bytes data = file.slice(8 + header_len, file.size() - 8 - header_len);
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ is not an object", path.string());
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("{}: __metadata__ value '{}' is not a string", path.string(), k);
        out.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    out.tensors_.emplace(name, parse_entry(name, entry, data, path));
  }
  out.path_ = path;
  return out;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  return parse(map_file(path), path);
}

}  // namespace fp4llm
