"""A tiny random Qwen3 model with the real Qwen3 tokenizer files (../shared/testdata/tokenizers/
qwen3), written with the independent `safetensors` package as plain BF16 (fp4llm quantizes it to
NVFP4 at load). Its vocabulary is the real Qwen3 size, so every token the tokenizer produces is a
valid input; its output is random text, which is all the serving tests need."""
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from helpers import qwen3_config, qwen3_shapes, random_weights, bf16_array, save_bf16_aware  # noqa: E402

import numpy as np  # noqa: E402

QWEN3_VOCAB = 151936  # Qwen3's embedding rows (the tokenizer uses ids below 151669)
IM_END, ENDOFTEXT = 151645, 151643


def shared_dir():
    d = os.environ.get("FP4LLM_SHARED_DIR")
    return Path(d) if d else ROOT.parent / "shared"


def qwen3_tokenizer_dir():
    d = shared_dir() / "testdata" / "tokenizers" / "qwen3"
    assert (d / "tokenizer.json").is_file(), f"missing {d / 'tokenizer.json'} (FP4LLM_SHARED_DIR)"
    return d


# The CUDA kernels take head_dim 64, 128 or 256 (FP4LLM_TEST_DEVICE=cuda runs this suite on a GPU).
HEAD_DIM = 64 if os.environ.get("FP4LLM_TEST_DEVICE") == "cuda" else 16


def kv_cache_bytes(cpu_bytes):
    """--kv-cache-memory that holds as many tokens as `cpu_bytes` does with the CPU's head_dim."""
    return cpu_bytes * HEAD_DIM // 16


def save_with_qwen3_tokenizer(folder, tensors, config):
    """The model as BF16 safetensors with its config.json and the real Qwen3 tokenizer files."""
    save_bf16_aware(tensors, folder / "model.safetensors", bf16=True)
    (folder / "config.json").write_text(json.dumps(config))
    tok = qwen3_tokenizer_dir()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok / f, folder / f)


def write_tiny_qwen3(folder, seed=0, max_position_embeddings=4096):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head_dim = HEAD_DIM
    config = qwen3_config(hidden=32, layers=2, heads=2, kv_heads=1, head_dim=head_dim, inter=64, vocab=QWEN3_VOCAB)
    config["max_position_embeddings"] = max_position_embeddings
    config["eos_token_id"] = IM_END
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in qwen3_shapes(config).items():
        w = random_weights(shape, rng)
        if name.endswith("norm.weight"):
            w = 1.0 + w  # RMSNorm weights near one, as in trained models
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            w = w * 20  # peaked logits, so sampling at temperature 1 is not uniform noise
        tensors[name] = bf16_array(w)
    save_with_qwen3_tokenizer(folder, tensors, config)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [IM_END, ENDOFTEXT]}))
    return folder


def write_tiny_gemma3(folder, sliding_window=24, seed=0):
    """A tiny random Gemma 3 text model (four sliding-window layers, then one full-attention layer,
    the two RoPE bases, tied embeddings) with the Qwen3 tokenizer files: the serving tests need a
    tokenizer whose ids fit the vocabulary, not Gemma's own."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d, hidden, inter, heads, layers = HEAD_DIM, 32, 64, 2, 5
    config = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": hidden,
              "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
              "num_key_value_heads": 1, "head_dim": d, "vocab_size": QWEN3_VOCAB, "rms_norm_eps": 1e-6,
              "max_position_embeddings": 4096, "sliding_window": sliding_window, "query_pre_attn_scalar": d,
              "layer_types": ["sliding_attention"] * (layers - 1) + ["full_attention"], "rope_theta": 1e6,
              "rope_local_base_freq": 1e4, "hidden_activation": "gelu_pytorch_tanh", "eos_token_id": IM_END}
    shapes = {"model.embed_tokens.weight": (QWEN3_VOCAB, hidden), "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": (heads * d, hidden), p + "self_attn.k_proj.weight": (d, hidden),
                       p + "self_attn.v_proj.weight": (d, hidden), p + "self_attn.o_proj.weight": (hidden, heads * d),
                       p + "self_attn.q_norm.weight": (d,), p + "self_attn.k_norm.weight": (d,),
                       p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
                       p + "pre_feedforward_layernorm.weight": (hidden,),
                       p + "post_feedforward_layernorm.weight": (hidden,),
                       p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                       p + "mlp.down_proj.weight": (hidden, inter)})
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in shapes.items():
        w = random_weights(shape, rng)
        if name == "model.embed_tokens.weight":
            w = w * 4  # peaked logits (Gemma scales embeddings by sqrt(hidden) too)
        tensors[name] = bf16_array(w)
    save_with_qwen3_tokenizer(folder, tensors, config)
    return folder
