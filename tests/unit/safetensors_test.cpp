// Parser edge cases on byte buffers built here; whole-file behaviour is covered by the Python
// tests against files from the `safetensors` package.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "io/safetensors_file.hpp"
#include "util/error.hpp"

using namespace fp4llm;

namespace {
Bytes file_with_header(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0xAB);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[i] = uint8_t(n >> (8 * i));
  std::memcpy(b.data() + 8, header.data(), header.size());
  return Bytes::owned(std::move(b));
}

std::string error_of(const std::string& header, size_t data_bytes) {
  try {
    SafetensorsFile::parse(file_with_header(header, data_bytes), "t.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Safetensors, ParsesEntriesAndMetadata) {
  const auto f = SafetensorsFile::parse(
      file_with_header(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],)"
                       R"("data_offsets":[0,12]},"s":{"dtype":"F32","shape":[],"data_offsets":[12,16]}})",
                       16),
      "t.safetensors");
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorView& a = f.tensors().at("a");
  EXPECT_EQ(a.dtype, DType::BF16);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data.size(), 12u);
  EXPECT_EQ(f.tensors().at("s").numel(), 1);
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(Safetensors, ZeroSizedTensorsAreFine) {
  EXPECT_EQ(error_of(R"({"e":{"dtype":"F32","shape":[0,7],"data_offsets":[0,0]}})", 0), "");
}

TEST(Safetensors, RejectsInconsistentEntries) {
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)
                .find("past the end of the data"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", 16).find("needs 16"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", 16).find("data_offsets"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"shape":[4],"data_offsets":[0,16]}})", 16).find("missing dtype"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[4.5],"data_offsets":[0,16]}})", 16)
                .find("not an integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", 16)
                .find("too large"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551615,4]}})", 16)
                .find("reversed"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"__metadata__":{"k":1}})", 0).find("not a string"), std::string::npos);
}

TEST(Safetensors, ErrorsNameTheFileAndTensor) {
  const std::string e = error_of(R"({"layer.w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", 1);
  EXPECT_NE(e.find("t.safetensors"), std::string::npos);
  EXPECT_NE(e.find("layer.w"), std::string::npos);
  EXPECT_NE(e.find("'Q7'"), std::string::npos);
}
