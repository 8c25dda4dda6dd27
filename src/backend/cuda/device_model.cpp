#include "backend/cuda/device_model.hpp"

#include <cstring>

#include "formats/number_formats.hpp"
#include "io/tensor_store.hpp"
#include "util/error.hpp"
#include "util/parallel_for.hpp"
#include "util/progress_bar.hpp"

namespace fp4llm::cuda {

namespace {

const QuantizedLinear& nvfp4_of(const LinearWeight& w, const char* role, int64_t layer) {
  return w.nvfp4_for("the CUDA backend", layer, role);
}

DeviceNvfp4Linear fused(std::initializer_list<const QuantizedLinear*> parts) {
  const std::vector<const QuantizedLinear*> list(parts);
  return upload_nvfp4(make_nvfp4_tiles(list));
}

// t's values as BF16 into host memory of t.numel() elements.
void to_bf16(const TensorView& t, __nv_bfloat16* host) {
  if (t.dtype == DType::BF16) {
    std::memcpy(static_cast<void*>(host), t.data.data(), size_t(t.numel()) * 2);
    return;
  }
  parallel_for(t.numel(), 1 << 20, [&](int64_t begin, int64_t end) {
    std::vector<float> f(static_cast<size_t>(end - begin));
    read_floats(t, begin, end - begin, f.data());
    for (int64_t i = begin; i < end; ++i) {
      const uint16_t b = float_to_bf16(f[size_t(i - begin)]);
      std::memcpy(static_cast<void*>(&host[size_t(i)]), &b, 2);
    }
  });
}

DeviceBuffer<__nv_bfloat16> upload_bf16(const TensorView& t) {
  std::vector<__nv_bfloat16> host(static_cast<size_t>(t.numel()));
  to_bf16(t, host.data());
  return DeviceBuffer<__nv_bfloat16>::from_host(host);
}

Nvfp4Tiles gated_tiles(const MlpWeights& m, int64_t layer) {
  return make_gated_nvfp4_tiles(nvfp4_of(m.gate, "gate_proj", layer), nvfp4_of(m.up, "up_proj", layer));
}

Nvfp4Tiles down_tiles(const MlpWeights& m, int64_t layer) {
  const QuantizedLinear* parts[] = {&nvfp4_of(m.down, "down_proj", layer)};
  return make_nvfp4_tiles(parts);
}

// Experts stacked one at a time (the host holds one expert's tiles, not the layer's).
DeviceMoe upload_moe(const MoeWeights& m, const ModelConfig& c, int64_t layer) {
  DeviceMoe d;
  d.shape = router_shape(c, m.first_expert, int64_t(m.experts.size()));
  check_router_shape(d.shape);  // at load, before any expert is uploaded
  std::vector<__nv_bfloat16> router(m.router.size());
  for (size_t i = 0; i < router.size(); ++i) {
    const uint16_t b = float_to_bf16(m.router[i]);  // the checkpoint's 16-bit values, exactly
    std::memcpy(static_cast<void*>(&router[i]), &b, 2);
  }
  d.router = DeviceBuffer<__nv_bfloat16>::from_host(router);
  for (size_t e = 0; e < m.experts.size(); ++e) {
    Nvfp4Tiles gate_up = gated_tiles(m.experts[e], layer), down = down_tiles(m.experts[e], layer);
    if (e == 0) {
      d.gate_up = allocate_experts(gate_up, int64_t(m.experts.size()));
      d.down = allocate_experts(down, int64_t(m.experts.size()));
    } else {
      upload_expert(d.gate_up, int64_t(e), gate_up);
      upload_expert(d.down, int64_t(e), down);
    }
  }
  return d;
}

DeviceLayer upload_layer(const LayerWeights& L, const ModelConfig& c, int64_t index) {
  DeviceLayer d;
  d.qkv = fused({&nvfp4_of(L.q, "q_proj", index), &nvfp4_of(L.k, "k_proj", index), &nvfp4_of(L.v, "v_proj", index)});
  d.o = fused({&nvfp4_of(L.o, "o_proj", index)});
  if (L.moe) {
    d.moe = upload_moe(*L.moe, c, index);
  } else {
    d.gate_up = upload_nvfp4(gated_tiles(L.mlp, index));
    d.down = upload_nvfp4(down_tiles(L.mlp, index));
  }
  d.input_norm = DeviceBuffer<float>::from_host(L.input_norm);
  d.post_attention_norm = DeviceBuffer<float>::from_host(L.post_attention_norm);
  d.q_norm = DeviceBuffer<float>::from_host(L.q_norm);
  d.k_norm = DeviceBuffer<float>::from_host(L.k_norm);
  d.pre_feedforward_norm = DeviceBuffer<float>::from_host(L.pre_feedforward_norm);
  d.post_feedforward_norm = DeviceBuffer<float>::from_host(L.post_feedforward_norm);
  d.kv_scales = L.kv_scales;
  return d;
}

}  // namespace

uint64_t DeviceModel::weight_bytes() const {
  uint64_t b = embed.bytes() + lm_head.bytes() + final_norm.bytes();
  if (lm_head_nvfp4) b += lm_head_nvfp4->bytes();
  for (const DeviceLayer& l : layers) {
    b += l.qkv.bytes() + l.o.bytes() + l.gate_up.bytes() + l.down.bytes() + (l.moe ? l.moe->bytes() : 0);
    b += l.input_norm.bytes() + l.post_attention_norm.bytes() + l.q_norm.bytes() + l.k_norm.bytes();
    b += l.pre_feedforward_norm.bytes() + l.post_feedforward_norm.bytes();
  }
  return b;
}

uint64_t DeviceModel::bytes_per_step() const {
  uint64_t b = weight_bytes() - embed.bytes();
  if (!lm_head.size() && !lm_head_nvfp4) b += embed.bytes();  // tied: lm_head reads the table
  return b;
}

uint64_t DeviceModel::expert_bytes() const {
  uint64_t b = 0;
  for (const DeviceLayer& l : layers)
    if (l.moe) b += l.moe->gate_up.bytes() + l.moe->down.bytes();
  return b;
}

uint64_t DeviceModel::bytes_per_expert() const {
  for (const DeviceLayer& l : layers)
    if (l.moe) return l.moe->bytes_per_expert();
  return 0;
}

HostTable host_embedding_table(const ModelWeights& w) {
  w.check_embedding_offload();
  auto table = std::make_shared<HostMappedBuffer<__nv_bfloat16>>(size_t(w.embed->numel()));
  to_bf16(*w.embed, table->host());
  return table;
}

DeviceModel upload_model(const ModelWeights& w, bool progress, HostTable host_table) {
  DeviceModel d;
  d.config = w.config;
  ProgressBar bar("upload to GPU", uint64_t(w.layers.size() + 1), "layers");
  if (!progress) bar.disable();
  if (host_table) {
    w.check_embedding_offload();  // a shard's lm_head is its own slice; the whole model's may be the table
    if (host_table->size() != size_t(w.embed->numel())) throw_error("upload_model: the host embedding table has another shape");
    d.embed_host = std::move(host_table);
  } else {
    d.embed = upload_bf16(*w.embed);
  }
  if (w.lm_head_nvfp4)
    d.lm_head_nvfp4 = fused({w.lm_head_nvfp4});
  else if (w.lm_head != w.embed)
    d.lm_head = upload_bf16(*w.lm_head);
  d.final_norm = DeviceBuffer<float>::from_host(w.final_norm);
  bar.advance(1);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    d.layers.push_back(upload_layer(w.layers[i], w.config, int64_t(i)));
    bar.advance(1);
  }
  bar.finish();
  return d;
}

}  // namespace fp4llm::cuda
