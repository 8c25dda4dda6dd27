// What `fp4llm inspect` reports about a model folder, computed without running it. A plain
// checkpoint is not quantized for this: its NVFP4 sizes follow from the tensor shapes.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/quant_scheme.hpp"
#include "model/model_config.hpp"

namespace fp4llm {

struct ModelSummary {
  ModelConfig config;
  QuantScheme scheme;
  int64_t linear_params = 0, other_params = 0;  // NVFP4 linears / tensors kept as stored
  int64_t num_linears = 0, num_other_tensors = 0;
  uint64_t file_bytes = 0;                      // .safetensors data on disk
  uint64_t linear_bytes = 0, other_bytes = 0;   // weights as fp4llm holds them in GPU memory
  int64_t kv_scale_layers = 0;                  // layers with checkpoint k_scale/v_scale

  nlohmann::json to_json() const;
};

ModelSummary summarize_model(const std::filesystem::path& dir);

}  // namespace fp4llm
