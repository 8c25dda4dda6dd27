// Incremental form of a Decoder: tokens go in one at a time, text comes out as soon as no later
// token can change it, and the pieces always concatenate to Decoder::decode of all tokens.
//
// Each step becomes a small transducer. Before a Fuse or ByteLevel step every piece is one
// token; after it, the pieces are consecutive parts of one string ("joined"), which matters to
// steps that look across token boundaries (Replace of a longer pattern, Strip of the ends).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoder.hpp"

namespace fp4llm::tok {

class StepStream {
 public:
  virtual ~StepStream() = default;
  virtual void push(std::string piece, std::vector<std::string>& out) = 0;
  virtual void finish(std::vector<std::string>& out) = 0;
};

class DecoderStream {
 public:
  explicit DecoderStream(const std::vector<DecoderStep>& steps);
  // Text that became final with this token (possibly empty).
  std::string push(std::string token);
  // Whatever was held back, decoded as the end of the text.
  std::string finish();

 private:
  void run_from(size_t step, std::vector<std::string> pieces, std::string& out);
  std::vector<std::unique_ptr<StepStream>> steps_;
};

}  // namespace fp4llm::tok
