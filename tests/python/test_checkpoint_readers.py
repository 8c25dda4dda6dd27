"""The ModelOpt and compressed-tensors readers on checkpoints written here, in Python, the way
those tools lay them out (FORMATS.md), compared with the numpy reference."""
import json

import numpy as np
import pytest

from helpers import (bf16_array, dequant_dump, qwen3_config, qwen3_shapes, random_weights, run,
                     save_tensors)
from nvfp4_reference import dequantize_nvfp4, e2m1_decode, e4m3_decode, quantize_nvfp4, unpack_codes


def make_quantized_model(folder, flavour, seed=0, scale2_dtype="F32", kv_scales="both",
                         config_quant=False, shard=False):
    """Writes a tiny Qwen3 checkpoint in `flavour` ("modelopt" or "ct"). Returns the reference
    dequantized weight of every linear and the expected KV scales."""
    rng = np.random.default_rng(seed)
    cfg = qwen3_config()
    tensors, relabel, ref, kv = {}, {}, {}, {}
    for name, shape in qwen3_shapes(cfg).items():
        w = random_weights(shape, rng)
        if not name.endswith("_proj.weight"):
            tensors[name] = bf16_array(w)
            relabel[name] = "BF16"
            continue
        m = name[: -len(".weight")]
        packed, scales, g = quantize_nvfp4(w)
        if flavour == "modelopt":
            tensors[m + ".weight"] = packed
            tensors[m + ".weight_scale"] = scales
            relabel[m + ".weight_scale"] = "F8_E4M3"
            if scale2_dtype == "BF16":  # some exports store it as BF16: the reader upcasts
                g = np.float32((bf16_array(g).astype(np.uint32) << 16).view(np.float32))
                tensors[m + ".weight_scale_2"] = bf16_array(np.array(g, np.float32))
                relabel[m + ".weight_scale_2"] = "BF16"
            else:
                tensors[m + ".weight_scale_2"] = np.array(g, np.float32)
            tensors[m + ".input_scale"] = np.array(0.02, np.float32)
            ref[m] = dequantize_nvfp4(packed, scales, g)
        else:
            # compressed-tensors stores the reciprocal: weight_global_scale = 448 * 6 / amax.
            gs = np.float32(np.float32(2688.0) / np.float32(np.max(np.abs(w))))
            tensors[m + ".weight_packed"] = packed
            tensors[m + ".weight_scale"] = scales
            relabel[m + ".weight_scale"] = "F8_E4M3"
            tensors[m + ".weight_global_scale"] = np.array([gs], np.float32)
            tensors[m + ".input_global_scale"] = np.array([50.0], np.float32)
            # canonical form: one multiply by the float32 reciprocal
            codes = unpack_codes(packed)
            s = np.repeat(e4m3_decode(scales), 16, axis=1)
            ref[m] = ((e2m1_decode(codes) * s).astype(np.float32) * (np.float32(1) / gs)).astype(np.float32)
    for i in range(cfg["num_hidden_layers"]):
        attn = f"model.layers.{i}.self_attn"
        k, v = np.float32(0.01 * (i + 1)), np.float32(0.02 * (i + 1))
        if flavour == "modelopt":
            if kv_scales in ("both", "k"):
                tensors[attn + ".k_proj.k_scale"] = np.array(k, np.float32)
            if kv_scales == "both":
                tensors[attn + ".v_proj.v_scale"] = np.array(v, np.float32)
        else:
            tensors[attn + ".k_scale"] = bf16_array(np.array([k]))
            relabel[attn + ".k_scale"] = "BF16"
            tensors[attn + ".v_scale"] = bf16_array(np.array([v]))
            relabel[attn + ".v_scale"] = "BF16"
            k = (bf16_array(k).astype(np.uint32) << 16).view(np.float32)
            v = (bf16_array(v).astype(np.uint32) << 16).view(np.float32)
        if kv_scales == "k":
            v = k  # only one present: it serves for both
        kv[attn] = (np.float32(k), np.float32(v))

    folder.mkdir(parents=True)
    if shard:
        names = sorted(tensors)
        half = {n: ("model-00001-of-00002.safetensors" if i % 2 else "model-00002-of-00002.safetensors")
                for i, n in enumerate(names)}
        for f in set(half.values()):
            part = {n: tensors[n] for n in names if half[n] == f}
            save_tensors(part, folder / f, {n: relabel[n] for n in part if n in relabel})
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": 0}, "weight_map": half}))
    else:
        save_tensors(tensors, folder / "model.safetensors", relabel)

    if flavour == "modelopt":
        q = {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
             "exclude_modules": ["lm_head"]}
        if config_quant:
            cfg["quantization_config"] = dict(q, quant_method="modelopt",
                                              config_groups={"group_0": {"targets": ["Linear"]}})
        else:
            (folder / "hf_quant_config.json").write_text(
                json.dumps({"producer": {"name": "modelopt", "version": "0.29.0"}, "quantization": q}))
    else:
        cfg["quantization_config"] = {
            "quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized",
            "config_groups": {"group_0": {"format": "nvfp4-pack-quantized", "targets": ["Linear"],
                                          "weights": {"num_bits": 4, "type": "float",
                                                      "strategy": "tensor_group", "group_size": 16}}},
            "ignore": ["lm_head"], "kv_cache_scheme": {"num_bits": 8, "type": "float"}}
    (folder / "config.json").write_text(json.dumps(cfg))
    return ref, kv


@pytest.mark.parametrize("variant", [
    dict(flavour="modelopt"),
    dict(flavour="modelopt", scale2_dtype="BF16"),
    dict(flavour="modelopt", kv_scales="k"),
    dict(flavour="modelopt", config_quant=True),
    dict(flavour="modelopt", shard=True),
    dict(flavour="ct"),
    dict(flavour="ct", shard=True),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()))
def test_reader_matches_numpy(tmp_path, variant):
    folder = tmp_path / "model"
    ref, kv = make_quantized_model(folder, **variant)
    got, meta = dequant_dump(folder, tmp_path / "dump.safetensors")
    assert set(k[: -len(".dequant")] for k in got if k.endswith(".dequant")) == set(ref)
    for m, w in ref.items():
        np.testing.assert_array_equal(got[m + ".dequant"].view(np.uint32), w.view(np.uint32), err_msg=m)
    for attn, (k, v) in kv.items():
        np.testing.assert_array_equal(got[attn + ".kv_scales"], np.array([k, v], np.float32))
    plain = meta["plain_tensors"].split(",")
    assert "lm_head.weight" in plain and "model.norm.weight" in plain
    assert not any(p.endswith(("_scale", "_scale_2", "global_scale")) for p in plain)


def test_compressed_tensors_reciprocal_is_within_one_rounding_of_division(tmp_path):
    folder = tmp_path / "model"
    ref, _ = make_quantized_model(folder, "ct")
    got, _ = dequant_dump(folder, tmp_path / "dump.safetensors")
    for m, w in ref.items():
        assert np.allclose(got[m + ".dequant"], w, rtol=2.0 ** -22, atol=0)


def test_summary_of_each_format_agrees(tmp_path):
    a, b = tmp_path / "mo", tmp_path / "ct"
    make_quantized_model(a, "modelopt")
    make_quantized_model(b, "ct")
    ja = json.loads(run("inspect", a, "--json").stdout)
    jb = json.loads(run("inspect", b, "--json").stdout)
    assert ja["format"] == "ModelOpt NVFP4" and jb["format"] == "compressed-tensors NVFP4"
    for key in ("parameters", "nvfp4_parameters", "nvfp4_linears", "nvfp4_weight_bytes"):
        assert ja[key] == jb[key], key
    assert ja["checkpoint_kv_scales"] == 2


@pytest.mark.parametrize("quant,msg", [
    ({"quant_method": "awq", "bits": 4}, "quant_method 'awq' is not supported"),
    ({"quant_method": "modelopt", "quant_algo": "FP8"}, "quant_algo 'FP8' is not supported"),
    ({"quant_method": "compressed-tensors", "format": "float-quantized"}, "is not supported"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 32}, "group_size 32"),
])
def test_unsupported_quantization_is_refused(tmp_path, quant, msg):
    folder = tmp_path / "m"
    make_quantized_model(folder, "modelopt", config_quant=True)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["quantization_config"] = quant
    (folder / "config.json").write_text(json.dumps(cfg))
    p = run("inspect", folder, check=False)
    assert p.returncode == 1 and msg in p.stderr, p.stderr
