// Turns the parsed fields and an encoded prompt into the engine requests of the n choices:
// sampling defaults from generation_config.json under the request's values, the length checks
// against --max-model-len (400 naming both lengths), and a distinct seed per choice.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/engine_request.hpp"
#include "server/generation_fields.hpp"
#include "server/serving_model.hpp"

namespace fp4llm::server {

std::vector<EngineRequest> engine_requests(const GenerationFields& fields, const std::vector<int32_t>& prompt,
                                           const ServingModel& model);

// 404 when `fields.model` names another model.
void check_model_name(const GenerationFields& fields, const ServingModel& model);

}  // namespace fp4llm::server
