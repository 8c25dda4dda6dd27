#include "backend/cuda/cuda_check.hpp"

#include "util/error.hpp"

namespace fp4llm::cuda {

void throw_cuda_error(const char* status, const char* call, const char* file, int line) {
  fail("CUDA error {} in {} ({}:{})", status, call, file, line);
}

void throw_error(const std::string& message) { fail("{}", message); }

}  // namespace fp4llm::cuda
