"""`fp4llm inspect` figures recomputed here from the tensor shapes and the config."""
import json

import numpy as np

from helpers import qwen3_config, qwen3_shapes, run, write_plain_model


def expected_sizes(shapes, dtype_bytes=2):
    lin = {n: s for n, s in shapes.items() if n.endswith("_proj.weight") and not n.startswith("lm_head")}
    other = {n: s for n, s in shapes.items() if n not in lin}
    lin_params = sum(int(np.prod(s)) for s in lin.values())
    other_params = sum(int(np.prod(s)) for s in other.values())
    lin_bytes = sum(s[0] * s[1] // 2 + s[0] * s[1] // 16 + 4 for s in lin.values())
    return lin_params, other_params, lin_bytes, other_params * dtype_bytes


def test_qwen3_plain_and_quantized_agree_with_shapes(tmp_path):
    cfg = qwen3_config()
    write_plain_model(tmp_path / "src", cfg)
    run("quantize", tmp_path / "src", tmp_path / "dst", "--quiet")
    lin_p, other_p, lin_b, other_b = expected_sizes(qwen3_shapes(cfg))
    for folder in ("src", "dst"):
        j = json.loads(run("inspect", tmp_path / folder, "--json").stdout)
        assert j["architecture"] == "Qwen3ForCausalLM"
        assert j["layers"] == 2 and j["kv_heads"] == 2 and j["head_dim"] == 16
        assert j["parameters"] == lin_p + other_p
        assert j["nvfp4_parameters"] == lin_p
        assert j["nvfp4_weight_bytes"] == lin_b
        assert j["other_weight_bytes"] == other_b
        assert j["gpu_weight_bytes"] == lin_b + other_b
        # FP8 cache: one byte per element of K and V, every layer
        assert j["kv_bytes_per_token"] == 2 * 2 * 16 * 2
    assert json.loads(run("inspect", tmp_path / "dst", "--json").stdout)["format"] == "ModelOpt NVFP4"
    text = run("inspect", tmp_path / "dst").stdout
    assert "Qwen3ForCausalLM" in text and "KV cache FP8" in text


def test_gemma3_multimodal_text_config_and_sliding_layers(tmp_path):
    text = {"hidden_size": 64, "num_hidden_layers": 12, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 128,
            "sliding_window": 512, "model_type": "gemma3_text"}
    cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
           "text_config": text}
    shapes = {"language_model.model.embed_tokens.weight": (1000, 64),
              "language_model.model.layers.0.self_attn.q_proj.weight": (128, 64),
              "language_model.model.layers.0.mlp.down_proj.weight": (64, 128),
              "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight": (32, 32)}
    write_plain_model(tmp_path / "g", cfg, shapes=shapes)
    j = json.loads(run("inspect", tmp_path / "g", "--json").stdout)
    assert j["architecture"] == "Gemma3ForConditionalGeneration"
    assert j["layers"] == 12 and j["sliding_window_layers"] == 10  # layers 6 and 12 are full
    assert j["vocab_size"] == 262208  # Gemma3TextConfig's default, absent from text_config
    assert j["kv_bytes_per_token"] == 2 * 2 * 32 * 12
    assert j["kv_bytes_per_token_full_layers"] == 2 * 2 * 32 * 2
    # the vision tower's projection is not quantized
    assert j["nvfp4_linears"] == 2 and j["nvfp4_parameters"] == 2 * 128 * 64


def test_gemma3_layer_types_take_precedence(tmp_path):
    cfg = {"architectures": ["Gemma3ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 4,
           "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
           "intermediate_size": 64, "vocab_size": 100, "sliding_window": 16,
           "layer_types": ["sliding_attention", "full_attention", "full_attention", "sliding_attention"]}
    write_plain_model(tmp_path / "g", cfg, shapes={"model.embed_tokens.weight": (100, 64)})
    j = json.loads(run("inspect", tmp_path / "g", "--json").stdout)
    assert j["sliding_window_layers"] == 2


def test_unsupported_architecture(tmp_path):
    cfg = qwen3_config()
    cfg["architectures"] = ["LlamaForCausalLM"]
    write_plain_model(tmp_path / "l", cfg)
    p = run("inspect", tmp_path / "l", check=False)
    assert p.returncode == 1 and "LlamaForCausalLM" in p.stderr and "not supported" in p.stderr


def test_moe_config(tmp_path):
    cfg = qwen3_config()
    cfg.update(architectures=["Qwen3MoeForCausalLM"], num_experts=16, num_experts_per_tok=4,
               moe_intermediate_size=32)
    shapes = {"model.layers.0.mlp.experts.3.up_proj.weight": (32, 48),
              "model.layers.0.mlp.gate.weight": (16, 48)}
    write_plain_model(tmp_path / "m", cfg, shapes=shapes)
    j = json.loads(run("inspect", tmp_path / "m", "--json").stdout)
    assert j["experts"] == 16
    assert j["nvfp4_linears"] == 1  # the router (mlp.gate) stays 16-bit
