"""Qwen3-MoE experts stored fused load as the same per-expert NVFP4 weights: a random model saved
per expert (the layout test_cpu_forward.py checks against numpy), the same weights saved fused as
transformers 5 saves them (mlp.experts.gate_up_proj [E, 2I, H], gate rows first; down_proj
[E, H, I]), and written as a llama.cpp qwen3moe GGUF by the `gguf` package (ffn_{gate,up,down}_exps,
ffn_gate_inp) give bit-identical logits."""
import json

import gguf
import numpy as np
import pytest

from helpers import read_safetensors, run, save_tensors
from test_cpu_forward import PROMPTS, config, forward_dump, write_model

E, I = 8, 32  # test_cpu_forward's qwen3_moe: experts, moe_intermediate_size


def moe_config():
    # Every layer MoE (llama.cpp's qwen3moe has no dense layers); an eps exact in float32.
    return dict(config("qwen3_moe"), mlp_only_layers=[], rms_norm_eps=2.0 ** -20)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def per_expert_tensors(folder):
    raw, _ = read_safetensors(folder / "model.safetensors")
    return {k: v for k, (_, v) in raw.items()}


def write_fused(per_expert, c, folder):
    fused = {k: v for k, v in per_expert.items() if ".mlp.experts." not in k}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}.mlp.experts."
        fused[p + "gate_up_proj"] = np.stack([np.concatenate([per_expert[f"{p}{e}.gate_proj.weight"],
                                                              per_expert[f"{p}{e}.up_proj.weight"]])
                                              for e in range(E)])
        fused[p + "down_proj"] = np.stack([per_expert[f"{p}{e}.down_proj.weight"] for e in range(E)])
    folder.mkdir()
    save_tensors(fused, folder / "model.safetensors", {k: "BF16" for k in fused})
    (folder / "config.json").write_text(json.dumps(c))


def write_gguf(per_expert, c, path, add_metadata=None):
    """llama.cpp's qwen3moe layout: numpy shape [E, out, in] is GGUF dims [in, out, E].
    `add_metadata(writer)` may add more key/values (a tokenizer)."""
    w = gguf.GGUFWriter(str(path), "qwen3moe")
    if add_metadata:
        add_metadata(w)
    for key, val in {"context_length": c["max_position_embeddings"], "embedding_length": c["hidden_size"],
                     "block_count": c["num_hidden_layers"], "attention.head_count": c["num_attention_heads"],
                     "attention.head_count_kv": c["num_key_value_heads"], "attention.key_length": c["head_dim"],
                     "attention.value_length": c["head_dim"], "expert_count": E,
                     "expert_used_count": c["num_experts_per_tok"], "expert_feed_forward_length": I}.items():
        w.add_uint32(f"qwen3moe.{key}", val)
    w.add_float32("qwen3moe.attention.layer_norm_rms_epsilon", c["rms_norm_eps"])
    w.add_float32("qwen3moe.rope.freq_base", c["rope_theta"])
    f32 = {k: bf16_to_f32(v) for k, v in per_expert.items()}
    w.add_tensor("token_embd.weight", f32["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", f32["model.norm.weight"])
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "input_layernorm": "attn_norm",
             "post_attention_layernorm": "ffn_norm", "mlp.gate": "ffn_gate_inp"}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for hf, ll in names.items():
            w.add_tensor(f"blk.{i}.{ll}.weight", f32[f"{p}{hf}.weight"])
        for proj, ll in (("gate_proj", "ffn_gate_exps"), ("up_proj", "ffn_up_exps"), ("down_proj", "ffn_down_exps")):
            w.add_tensor(f"blk.{i}.{ll}.weight", np.stack([f32[f"{p}mlp.experts.{e}.{proj}.weight"] for e in range(E)]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fused")
    c = moe_config()
    write_model(tmp / "per_expert", c, seed=11)
    per_expert = per_expert_tensors(tmp / "per_expert")
    write_fused(per_expert, c, tmp / "fused")
    write_gguf(per_expert, c, tmp / "model.gguf")
    return tmp


@pytest.mark.parametrize("variant", ["fused", "model.gguf"])
def test_fused_experts_give_the_per_expert_logits(models, variant, tmp_path):
    prompts = [[int(t) for t in p] for p in PROMPTS]
    ref = forward_dump(models / "per_expert", prompts, "bf16", 0, tmp_path / "ref.safetensors")
    got = forward_dump(models / variant, prompts, "bf16", 0, tmp_path / "got.safetensors")
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)


def test_quantize_writes_fused_experts_per_expert(models, tmp_path):
    run("quantize", models / "per_expert", tmp_path / "a", "--quiet")
    run("quantize", models / "fused", tmp_path / "b", "--quiet")
    a, _ = read_safetensors(tmp_path / "a" / "model.safetensors")
    b, _ = read_safetensors(tmp_path / "b" / "model.safetensors")
    assert set(a) == set(b) and "model.layers.0.mlp.experts.7.up_proj.weight_scale" in b
    for k in a:
        assert a[k][0] == b[k][0], k
        np.testing.assert_array_equal(a[k][1], b[k][1], err_msg=k)
