"""Shared helpers of the Python tests: run the fp4llm binary, write model folders with the
independent `safetensors` package."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from nvfp4_reference import f32_to_bf16

FP4LLM = os.environ.get("FP4LLM_BIN", "")
TOOLS = Path(os.environ.get("FP4LLM_TOOLS_DIR", "."))


def run(*args, check=True):
    assert FP4LLM, "FP4LLM_BIN is not set (run the tests through ctest)"
    p = subprocess.run([FP4LLM, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"fp4llm {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def dequant_dump(model_dir, out_path, scale_search="amax"):
    p = subprocess.run([str(TOOLS / "fp4llm_dequant_dump"), str(model_dir), str(out_path), scale_search],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    from safetensors import safe_open
    with safe_open(str(out_path), "numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def bf16_array(x):
    """A float32 array as BF16 bits, saved through safetensors as a uint16 view."""
    return f32_to_bf16(np.asarray(x, np.float32))


def qwen3_config(hidden=48, layers=2, heads=4, kv_heads=2, head_dim=16, inter=112, vocab=300,
                 tie=False):
    return {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "head_dim": head_dim, "intermediate_size": inter,
            "vocab_size": vocab, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "tie_word_embeddings": tie, "torch_dtype": "bfloat16"}


def qwen3_shapes(c):
    """Tensor name -> shape of a Qwen3 checkpoint with config c."""
    h, hd, inter = c["hidden_size"], c["head_dim"], c["intermediate_size"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], h), "model.norm.weight": (h,)}
    if not c.get("tie_word_embeddings"):
        shapes["lm_head.weight"] = (c["vocab_size"], h)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
            p + "self_attn.q_norm.weight": (hd,), p + "self_attn.k_norm.weight": (hd,),
            p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
            p + "mlp.down_proj.weight": (h, inter)})
    return shapes


def random_weights(shape, rng):
    """Normal weights with a few large outliers, a zero block and a near-zero block: the cases
    that exercise saturation, the zero-scale rule and the 2^-9 clamp."""
    w = rng.standard_normal(shape).astype(np.float32) * 0.05
    if len(shape) == 2 and shape[1] >= 32 and shape[0] >= 2:
        w[0, :16] = 0.0
        w[1, 16:32] = rng.standard_normal(16).astype(np.float32) * 1e-9
        w[rng.integers(shape[0]), rng.integers(shape[1])] = 3.0
    return w


def write_plain_model(folder, config, dtype="bf16", seed=0, shapes=None):
    """Writes config.json, model.safetensors and tokenizer-like files; returns the float32
    values of every tensor exactly as stored (after the cast to `dtype`)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shapes = shapes or qwen3_shapes(config)
    stored, values = {}, {}
    for name, shape in shapes.items():
        w = random_weights(shape, rng)
        if dtype == "bf16":
            bits = bf16_array(w)
            stored[name] = bits
            values[name] = (bits.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "f16":
            stored[name] = w.astype(np.float16)
            values[name] = stored[name].astype(np.float32)
        else:
            stored[name] = w
            values[name] = w
    save_bf16_aware(stored, folder / "model.safetensors", bf16=(dtype == "bf16"))
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": False}))
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 2]}))
    return values


PAD_KEY = "relabel_padding"


def save_tensors(tensors, path, relabel=None, metadata=None):
    """Saves with the `safetensors` package. numpy has no bfloat16 or float8 dtypes, so such
    tensors are saved as uint16/uint8 bit patterns and `relabel` {name: "BF16" | "F8_E4M3"}
    renames their dtype in the header afterwards. A padding metadata entry, shrunk by as much as
    the names grow, keeps the header length and so every offset unchanged."""
    relabel = relabel or {}
    meta = dict(metadata or {})
    meta[PAD_KEY] = "x" * (8 * len(relabel) + 8)
    save_file(tensors, str(path), metadata=meta)
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    for k, dtype in relabel.items():
        header[k]["dtype"] = dtype
    header["__metadata__"][PAD_KEY] = ""
    shortfall = n - len(json.dumps(header, separators=(",", ":")).encode())
    assert shortfall >= 0, "header grew while relabelling"
    header["__metadata__"][PAD_KEY] = "x" * shortfall
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) == n, (len(text), n)
    Path(path).write_bytes(data[:8] + text + data[8 + n:])


def save_bf16_aware(tensors, path, bf16=False, metadata=None):
    relabel = {k: "BF16" for k, v in tensors.items() if v.dtype == np.uint16} if bf16 else {}
    save_tensors(tensors, path, relabel, metadata)


def read_safetensors(path):
    """Raw tensors of a file as numpy (BF16 and F8_E4M3 as their bit patterns)."""
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    kinds = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32, "U8": np.uint8,
             "F8_E4M3": np.uint8, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], np.frombuffer(data[base + b:base + e], kinds[v["dtype"]]).reshape(v["shape"]))
    return out, header.get("__metadata__", {})


def write_random_model(folder, config, shapes, seed):
    """A plain BF16 checkpoint of random weights in trained-like ranges: norms near their neutral
    value (1, or 0 for Gemma's 1 + w), embeddings of scale 0.5, projections ~ 1/sqrt(fan-in)."""
    rng = np.random.default_rng(seed)
    gemma = config["architectures"][0].startswith("Gemma")
    tensors = {}
    for name, shp in shapes.items():
        r = rng.standard_normal(shp).astype(np.float32)
        if "norm" in name:
            w = (0.0 if gemma else 1.0) + 0.2 * r
        elif "embed" in name or "lm_head" in name:
            w = 0.5 * r
        else:
            w = r / np.sqrt(shp[-1])
        tensors[name] = bf16_array(w)
    folder.mkdir(parents=True)
    save_tensors(tensors, folder / "model.safetensors", {k: "BF16" for k in tensors})
    (folder / "config.json").write_text(json.dumps(config))
