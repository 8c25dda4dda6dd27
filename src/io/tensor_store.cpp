#include "io/tensor_store.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "formats/number_formats.hpp"
#include "util/error.hpp"
#include "util/json_file.hpp"

namespace fp4llm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Resolves an index entry to a file inside `dir`; a name reaching outside the folder is refused.
fs::path shard_path(const fs::path& dir, const std::string& file, const fs::path& index) {
  const fs::path p(file);
  if (p.empty() || p.is_absolute() || p.filename() != p)
    fail("{}: weight_map names '{}', which is not a file name inside the model folder",
         index.string(), file);
  return dir / p;
}

}  // namespace

TensorStore TensorStore::open(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail("{} is not a model folder", dir.string());
  TensorStore store;
  store.dir_ = dir;
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const json j = read_json_file(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      fail("{}: missing the weight_map object", index.string());
    std::set<std::string> shard_names;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail("{}: weight_map['{}'] is not a file name", index.string(), name);
      shard_names.insert(file.get<std::string>());
    }
    for (const auto& f : shard_names) store.add_file(shard_path(dir, f, index));
    for (const auto& [name, file] : j["weight_map"].items()) {
      const auto* t = store.find(name);
      if (!t || t->file.filename() != fs::path(file.get<std::string>()))
        fail("{}: lists tensor '{}' in {}, but that file does not contain it", index.string(),
             name, file.get<std::string>());
    }
  } else if (fs::exists(dir / "model.safetensors")) {
    store.add_file(dir / "model.safetensors");
  } else {
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") found.push_back(e.path());
    std::sort(found.begin(), found.end());
    if (found.empty()) fail("{}: no .safetensors files in the model folder", dir.string());
    for (const auto& f : found) store.add_file(f);
  }
  return store;
}

void TensorStore::add_file(const fs::path& path) {
  if (!fs::exists(path)) fail("{}: shard file is missing", path.string());
  SafetensorsFile file = SafetensorsFile::open(path);
  for (const auto& [name, view] : file.tensors()) {
    const auto [it, inserted] = tensors_.emplace(name, view);
    if (!inserted)
      fail("tensor '{}' appears in both {} and {}", name, it->second.file.string(),
           path.string());
  }
  files_.push_back(path);
}

uint64_t TensorStore::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [_, t] : tensors_) n += t.data.size();
  return n;
}

const TensorView* TensorStore::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& TensorStore::get(const std::string& name) const {
  if (const auto* t = find(name)) return *t;
  fail("tensor '{}' is missing from the checkpoint in {}", name, dir_.string());
}

void read_floats(const TensorView& t, int64_t offset, int64_t count, float* out) {
  if (offset < 0 || count < 0 || offset + count > t.numel())
    fail("{}: elements [{}, {}) are out of range", t.describe(), offset, offset + count);
  const uint8_t* p = t.data.data();
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out, p + 4 * offset, size_t(4 * count));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * (offset + i), 2);
        out[i] = bf16_to_float(v);
      }
      return;
    case DType::F16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * (offset + i), 2);
        out[i] = f16_to_float(v);
      }
      return;
    default:
      fail("{}: expected a floating-point tensor (F32, BF16 or F16)", t.describe());
  }
}

float read_scalar(const TensorView& t) {
  if (t.numel() != 1) fail("{}: expected a scalar", t.describe());
  float v;
  read_floats(t, 0, 1, &v);
  return v;
}

std::vector<float> read_floats(const TensorView& t) {
  std::vector<float> out(size_t(t.numel()));
  read_floats(t, 0, t.numel(), out.data());
  return out;
}

void expect_tensor(const TensorView& t, DType dtype, const std::vector<int64_t>& shape) {
  if (t.dtype != dtype || t.shape != shape)
    fail("{}: expected {} [{}]", t.describe(), dtype_name(dtype), fmt::join(shape, ", "));
}

}  // namespace fp4llm
