// A read-only byte range that keeps its storage alive: a slice of a memory-mapped file or an
// owned buffer. Lets readers hand out checkpoint data without copying it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace fp4llm {

class Bytes {
 public:
  Bytes() = default;
  Bytes(std::shared_ptr<const void> owner, const uint8_t* data, size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  static Bytes owned(std::vector<uint8_t> buffer) {
    auto holder = std::make_shared<std::vector<uint8_t>>(std::move(buffer));
    return Bytes(holder, holder->data(), holder->size());
  }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  Bytes slice(size_t offset, size_t size) const { return Bytes(owner_, data_ + offset, size); }

 private:
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace fp4llm
