"""`fp4llm quantize` against the numpy reference, bit for bit, on checkpoints written by the
independent `safetensors` package."""
import json

import numpy as np
import pytest

from helpers import dequant_dump, qwen3_config, read_safetensors, run, write_plain_model
from nvfp4_reference import dequantize_nvfp4, quantize_nvfp4

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def is_linear(name):
    return name.endswith("_proj.weight")


def read_output(folder):
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() \
        else ["model.safetensors"]
    tensors = {}
    for f in files:
        t, _ = read_safetensors(folder / f)
        assert not set(t) & set(tensors), "a tensor appears in two shards"
        tensors.update(t)
    return tensors


@pytest.mark.parametrize("dtype", ["bf16", "f16", "f32"])
def test_quantize_is_bit_exact_against_numpy(tmp_path, dtype):
    src, dst = tmp_path / "src", tmp_path / "dst"
    values = write_plain_model(src, qwen3_config(), dtype=dtype, seed=1)
    run("quantize", src, dst, "--quiet")
    out = read_output(dst)
    n_linear = 0
    for name, w in values.items():
        if is_linear(name):
            m = name[: -len(".weight")]
            packed, scales, g = quantize_nvfp4(w)
            assert out[m + ".weight"][0] == "U8" and out[m + ".weight"][1].shape == packed.shape
            assert out[m + ".weight_scale"][0] == "F8_E4M3"
            assert out[m + ".weight_scale_2"][0] == "F32" and out[m + ".weight_scale_2"][1].shape == ()
            np.testing.assert_array_equal(out[m + ".weight"][1], packed, err_msg=m)
            np.testing.assert_array_equal(out[m + ".weight_scale"][1], scales, err_msg=m)
            assert out[m + ".weight_scale_2"][1].view(np.uint32) == np.float32(g).view(np.uint32)
            n_linear += 1
        else:  # embeddings, norms and lm_head are copied unchanged
            dt, stored = out[name]
            want = {"bf16": "BF16", "f16": "F16", "f32": "F32"}[dtype]
            assert dt == want, name
            if dtype == "bf16":
                got = (stored.astype(np.uint32) << 16).view(np.float32)
            else:
                got = stored.astype(np.float32)
            np.testing.assert_array_equal(got, values[name], err_msg=name)
    assert n_linear == 2 * len(LINEARS)
    assert "lm_head.weight" in out and out["lm_head.weight"][0] != "U8"


def test_config_and_companion_files(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_plain_model(src, qwen3_config())
    run("quantize", src, dst, "--quiet")
    cfg = json.loads((dst / "config.json").read_text())
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "modelopt" and qc["quant_algo"] == "W4A16_NVFP4"
    assert qc["group_size"] == 16 and "lm_head" in qc["exclude_modules"]
    assert cfg["hidden_size"] == 48  # the rest of the config is kept
    hq = json.loads((dst / "hf_quant_config.json").read_text())
    assert hq["quantization"]["quant_algo"] == "W4A16_NVFP4"
    for f in ("tokenizer_config.json", "generation_config.json"):
        assert (dst / f).read_bytes() == (src / f).read_bytes()


def test_readers_dequantize_bit_exact(tmp_path):
    """The quantized output read back, and the plain source quantized at load, both dequantize
    to exactly the numpy reference."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    values = write_plain_model(src, qwen3_config(), seed=2)
    run("quantize", src, dst, "--quiet")
    for folder in (dst, src):
        got, meta = dequant_dump(folder, tmp_path / f"dump-{folder.name}.safetensors")
        for name, w in values.items():
            if not is_linear(name):
                assert name in meta["plain_tensors"].split(",")
                continue
            m = name[: -len(".weight")]
            packed, scales, g = quantize_nvfp4(w)
            ref = dequantize_nvfp4(packed, scales, g)
            np.testing.assert_array_equal(got[m + ".dequant"].view(np.uint32), ref.view(np.uint32),
                                          err_msg=f"{folder.name}: {m}")
            assert got[m + ".global_scale"] == np.float32(g)


def test_sharded_output_round_trips(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    values = write_plain_model(src, qwen3_config(vocab=1000), seed=3)
    run("quantize", src, dst, "--quiet", "--max-shard-size", "0.00002")  # 20 kB shards
    index = json.loads((dst / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    out = read_output(dst)
    assert set(index["weight_map"]) == set(out)
    assert index["metadata"]["total_size"] == sum(v[1].nbytes for v in out.values())
    got, _ = dequant_dump(dst, tmp_path / "dump.safetensors")
    w = values["model.layers.1.mlp.down_proj.weight"]
    np.testing.assert_array_equal(got["model.layers.1.mlp.down_proj.dequant"],
                                  dequantize_nvfp4(*quantize_nvfp4(w)))


def test_exclude_keeps_modules_in_16_bits(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    values = write_plain_model(src, qwen3_config())
    run("quantize", src, dst, "--quiet", "--exclude", "model.layers.1.*", "--exclude", "*.k_proj")
    out = read_output(dst)
    assert out["model.layers.1.mlp.up_proj.weight"][0] == "BF16"
    assert out["model.layers.0.self_attn.k_proj.weight"][0] == "BF16"
    assert out["model.layers.0.self_attn.q_proj.weight"][0] == "U8"
    qc = json.loads((dst / "config.json").read_text())["quantization_config"]
    assert "model.layers.1.*" in qc["exclude_modules"]
    # and the result loads, keeping those modules as plain tensors
    got, meta = dequant_dump(dst, tmp_path / "d.safetensors")
    assert "model.layers.1.mlp.up_proj.weight" in meta["plain_tensors"].split(",")
    assert "model.layers.0.mlp.up_proj.dequant" in got
    assert len(values) > 0


def test_refusals(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_plain_model(src, qwen3_config())
    run("quantize", src, dst, "--quiet")
    again = run("quantize", src, dst, "--quiet", check=False)
    assert again.returncode == 1 and "not empty" in again.stderr
    twice = run("quantize", dst, tmp_path / "dst2", "--quiet", check=False)
    assert twice.returncode == 1 and "already quantized" in twice.stderr


def test_width_not_multiple_of_16_is_an_error_not_a_silent_bf16(tmp_path):
    src = tmp_path / "src"
    cfg = qwen3_config()
    from helpers import qwen3_shapes
    shapes = qwen3_shapes(cfg)
    shapes["model.layers.0.mlp.extra_proj.weight"] = (8, 40)
    write_plain_model(src, cfg, shapes=shapes)
    p = run("quantize", src, tmp_path / "dst", "--quiet", check=False)
    assert p.returncode == 1
    assert "extra_proj" in p.stderr and "multiple of 16" in p.stderr
