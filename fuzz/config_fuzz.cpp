// libFuzzer target: arbitrary text as config.json (and as hf_quant_config content): parsing
// must end in a ModelConfig / QuantScheme or an fp4llm::Error, never a crash.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "io/quant_scheme.hpp"
#include "model/model_config.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    (void)fp4llm::ModelConfig::from_json(j);
  } catch (const fp4llm::Error&) {
  } catch (const nlohmann::json::exception&) {
    // from_json reads with json accessors that throw on wrong types; that is a bug to fix, so
    // let it crash the fuzzer by rethrowing below.
    throw;
  }
  try {
    (void)fp4llm::detect_quant_scheme("/nonexistent-fuzz-dir", j);
  } catch (const fp4llm::Error&) {
  }
  return 0;
}
