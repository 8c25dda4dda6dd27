// Builds without a CUDA toolkit: `fp4llm bench` explains why it cannot run.
#include "backend/backend_factory.hpp"
#include "backend/benchmark.hpp"
#include "util/error.hpp"

namespace fp4llm {

std::vector<std::string> synthetic_model_names() { return {}; }

nlohmann::json run_benchmark(const BenchOptions&) {
  fail("fp4llm bench needs the CUDA backend: {}", cuda_unavailable_reason());
}

}  // namespace fp4llm
