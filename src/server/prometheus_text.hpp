// GET /metrics: the engine's metrics in Prometheus' text format, named like vLLM's with the
// prefix fp4llm: (fp4llm:num_requests_running, fp4llm:kv_cache_usage_perc, ...).
#pragma once

#include <string>

#include "engine/engine_metrics.hpp"

namespace fp4llm::server {

std::string prometheus_text(const EngineMetrics& m, const std::string& model_name);

}  // namespace fp4llm::server
