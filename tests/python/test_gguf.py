"""GGUF import against the `gguf` package: a small Gemma3 GGUF written by gguf's own writer,
dequantized by fp4llm and by gguf (bit for bit), then requantized to NVFP4 exactly as the numpy
reference does; llama.cpp names and hyperparameters translated; bad files refused."""
import json
import struct

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

from helpers import TOOLS, dequant_dump, run
from nvfp4_reference import dequantize_nvfp4, f32_to_bf16, quantize_nvfp4

H, HEADS, KV, D, FF, VOCAB, LAYERS = 256, 4, 1, 64, 512, 300, 2
# Scale fields of each block type (byte offsets of f16 values) and block sizes.
F16_FIELDS = {Q.Q8_0: [0], Q.Q5_0: [0], Q.Q4_K: [0, 2], Q.Q6_K: [208]}
TYPES = {"attn_q": Q.Q5_0, "attn_k": Q.Q8_0, "attn_v": Q.Q4_K, "attn_output": Q.Q6_K,
         "ffn_gate": Q.Q4_K, "ffn_up": Q.F16, "ffn_down": Q.BF16}
SHAPES = {"attn_q": (HEADS * D, H), "attn_k": (KV * D, H), "attn_v": (KV * D, H),
          "attn_output": (H, HEADS * D), "ffn_gate": (FF, H), "ffn_up": (FF, H), "ffn_down": (H, FF)}


def random_blocks(qtype, rows, cols, rng):
    """Random block bytes with sane f16 scales: every bit pattern of the codes is valid."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        d = (rng.random((rows, cols // block)) * 0.01 + 0.001).astype(np.float16)
        raw[:, :, off:off + 2] = d.view(np.uint8).reshape(rows, cols // block, 2)
    return raw.reshape(rows, -1)


def write_gguf(path, rng, extra=None):
    w = gguf.GGUFWriter(str(path), "gemma3")
    for key, val in {"context_length": 1024, "embedding_length": H, "block_count": LAYERS,
                     "feed_forward_length": FF, "attention.head_count": HEADS,
                     "attention.head_count_kv": KV, "attention.key_length": D,
                     "attention.value_length": D, "attention.sliding_window": 8}.items():
        w.add_uint32(f"gemma3.{key}", val)
    w.add_float32("gemma3.attention.layer_norm_rms_epsilon", 1e-6)
    w.add_float32("gemma3.rope.freq_base", 1e6)
    tensors = {}

    def add(name, qtype, rows, cols):
        if qtype in F16_FIELDS:
            raw = random_blocks(qtype, rows, cols, rng)
            w.add_tensor(name, raw, raw_dtype=qtype)
            tensors[name] = gguf.quants.dequantize(raw, qtype).reshape(rows, cols)
        else:
            x = rng.standard_normal((rows, cols)).astype(np.float32) * 0.05
            raw = gguf.quants.quantize(x, qtype)
            w.add_tensor(name, raw, raw_dtype=qtype)
            tensors[name] = gguf.quants.dequantize(raw, qtype).reshape(rows, cols)

    add("token_embd.weight", Q.Q8_0, VOCAB, H)
    norm = lambda n: (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)  # noqa: E731
    tensors["output_norm.weight"] = norm(H)
    w.add_tensor("output_norm.weight", tensors["output_norm.weight"])
    for i in range(LAYERS):
        for part, qtype in TYPES.items():
            add(f"blk.{i}.{part}.weight", qtype, *SHAPES[part])
        for part, n in (("attn_norm", H), ("post_attention_norm", H), ("ffn_norm", H),
                        ("post_ffw_norm", H), ("attn_q_norm", D), ("attn_k_norm", D)):
            tensors[f"blk.{i}.{part}.weight"] = norm(n)
            w.add_tensor(f"blk.{i}.{part}.weight", tensors[f"blk.{i}.{part}.weight"])
    for name, arr in (extra or {}).items():
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny-gemma3.gguf"
    return path, write_gguf(path, np.random.default_rng(0))


def test_dequantization_is_bit_exact(model, tmp_path):
    path, ref = model
    import subprocess
    p = subprocess.run([str(TOOLS / "fp4llm_gguf_dump"), str(path), str(tmp_path / "d.safetensors")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    from safetensors.numpy import load_file
    got = load_file(str(tmp_path / "d.safetensors"))
    assert set(got) == set(ref)
    for name, r in ref.items():
        np.testing.assert_array_equal(got[name].reshape(r.shape).view(np.uint32),
                                      r.astype(np.float32).view(np.uint32), err_msg=name)


def test_import_requantizes_and_renames(model, tmp_path):
    path, ref = model
    got, meta = dequant_dump(path, tmp_path / "d.safetensors")
    names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}
    for i in range(LAYERS):
        for g, h in names.items():
            w = ref[f"blk.{i}.{g}.weight"].astype(np.float32)
            np.testing.assert_array_equal(got[f"model.layers.{i}.{h}.dequant"],
                                          dequantize_nvfp4(*quantize_nvfp4(w)), err_msg=h)
        # llama.cpp stores Gemma norms as 1 + w
        for g, h in (("attn_norm", "input_layernorm"), ("ffn_norm", "pre_feedforward_layernorm"),
                     ("post_ffw_norm", "post_feedforward_layernorm"), ("attn_q_norm", "self_attn.q_norm")):
            np.testing.assert_array_equal(got[f"model.layers.{i}.{h}.weight.value"],
                                          ref[f"blk.{i}.{g}.weight"] - np.float32(1))
    emb = (f32_to_bf16(ref["token_embd.weight"].astype(np.float32)).astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(got["model.embed_tokens.weight.value"], emb)


def test_inspect_reads_hyperparameters(model):
    path, _ = model
    j = json.loads(run("inspect", path, "--json").stdout)
    assert j["architecture"] == "Gemma3ForCausalLM" and j["format"].startswith("GGUF")
    assert (j["layers"], j["hidden_size"], j["kv_heads"], j["head_dim"], j["vocab_size"]) == (LAYERS, H, KV, D, VOCAB)
    assert j["sliding_window"] == 8 and j["nvfp4_linears"] == 7 * LAYERS


def corrupt(path, tmp_path, edit):
    data = bytearray(path.read_bytes())
    edit(data)
    out = tmp_path / "bad.gguf"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("edit,msg", [
    (lambda d: d.__setitem__(slice(0, 4), b"GGUX"), "not a GGUF file"),
    (lambda d: d.__delitem__(slice(len(d) - 1000, len(d))), "runs past the end"),
    (lambda d: d.__delitem__(slice(200, len(d))), "truncated"),
    (lambda d: d.__setitem__(slice(4, 8), struct.pack("<I", 9)), "version 9"),
    (lambda d: d.__setitem__(slice(16, 24), struct.pack("<Q", 1 << 60)), "truncated"),
])
def test_corrupt_files(model, tmp_path, edit, msg):
    path, _ = model
    p = run("inspect", corrupt(path, tmp_path, edit), check=False)
    assert p.returncode == 1 and msg in p.stderr, p.stderr


def test_unknown_tensor_is_refused(tmp_path):
    path = tmp_path / "x.gguf"
    write_gguf(path, np.random.default_rng(1), extra={"blk.0.mystery.weight": np.ones(16, np.float32)})
    p = run("inspect", path, check=False)
    assert p.returncode == 1 and "blk.0.mystery.weight" in p.stderr and "no place" in p.stderr


def test_unsupported_block_type_is_refused(tmp_path):
    path = tmp_path / "q2.gguf"
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_tensor("token_embd.weight", np.zeros((4, 84), np.uint8), raw_dtype=Q.Q2_K)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    p = run("inspect", path, check=False)
    assert p.returncode == 1 and "Q2_K" in p.stderr and "not supported" in p.stderr
