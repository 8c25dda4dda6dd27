// The per-format readers behind load_checkpoint(). Each fills Checkpoint::weights (and kv_scales)
// from the folder's tensors and accounts for every tensor: one it cannot place is an error.
#pragma once

#include "io/checkpoint.hpp"
#include "io/tensor_store.hpp"

namespace fp4llm {

void read_modelopt_nvfp4(const TensorStore& store, Checkpoint& out);
void read_compressed_tensors_nvfp4(const TensorStore& store, Checkpoint& out);
void read_plain(const TensorStore& store, const LoadOptions& options, Checkpoint& out);
void read_gguf(const std::filesystem::path& path, const LoadOptions& options, Checkpoint& out);

// Builds a QuantizedLinear from its packed codes and block scales after checking that their
// dtypes and shapes agree: packed U8 [out, in/2], scales F8_E4M3 [out, in/16].
QuantizedLinear make_quantized_linear(const TensorView& packed, const TensorView& scales,
                                      float global_scale);

// Records a KV-cache scale tensor; `is_k` tells which of the two it is.
void add_kv_scale(const std::string& attention_module, bool is_k, const TensorView& t,
                  Checkpoint& out);
// When a layer ships only one of k_scale / v_scale, it serves for both (FORMATS.md).
void complete_kv_scales(Checkpoint& out);

}  // namespace fp4llm
