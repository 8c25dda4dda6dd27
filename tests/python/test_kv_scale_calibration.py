"""`fp4llm quantize --kv-scales calibrate`: per-layer FP8 KV scales equal amax/448 of K and V
computed by the numpy forward pass on the same text, are stored as ModelOpt's k_scale/v_scale,
are what the engine then loads, and bad requests fail with a clear message."""
import json

import numpy as np
import pytest

from helpers import read_safetensors, run, save_bf16_aware
from test_cpu_forward import config, load_weights, reference_logits
from test_eval import TEXT, tiny_model_with_tokenizer

TOKENS = 40


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calibrated")
    model, tok = tiny_model_with_tokenizer(tmp)
    run("quantize", model, tmp / "q", "--quiet", "--kv-scales", "calibrate", "--calibration-text", TEXT,
        "--calibration-tokens", TOKENS)
    return tmp, model, tok


def test_scales_are_amax_over_448_of_the_numpy_forward(calibrated):
    tmp, _, tok = calibrated
    c = config("gemma3")
    amax = []
    reference_logits(c, load_weights(tmp / "q"), tok.encode(TEXT.read_text()).ids[:TOKENS], "bf16", amax)
    raw, _ = read_safetensors(tmp / "q" / "model.safetensors")
    assert len(amax) == c["num_hidden_layers"]
    for i, (k_amax, v_amax) in enumerate(amax):
        for key, want in (("k_proj.k_scale", k_amax / 448), ("v_proj.v_scale", v_amax / 448)):
            dtype, got = raw[f"model.layers.{i}.self_attn.{key}"]
            assert dtype == "F32" and got.shape == ()
            assert abs(float(got) - want) <= 1e-3 * want, (i, key, float(got), want)


def test_configs_declare_fp8_kv_and_the_engine_loads_the_scales(calibrated):
    tmp, _, _ = calibrated
    hf = json.loads((tmp / "q" / "hf_quant_config.json").read_text())
    cfg = json.loads((tmp / "q" / "config.json").read_text())
    assert hf["quantization"]["kv_cache_quant_algo"] == "FP8"
    assert cfg["quantization_config"]["kv_cache_quant_algo"] == "FP8"
    info = json.loads(run("inspect", tmp / "q", "--json").stdout)
    assert info["checkpoint_kv_scales"] == config("gemma3")["num_hidden_layers"]


def test_stored_scales_score_as_eval_calibration_does(calibrated, tmp_path):
    """Scoring the calibrated checkpoint with its own scales is the same computation as scoring
    the plain one with `eval --kv-scales calibrate` over the same first window."""
    tmp, model, _ = calibrated
    run("quantize", model, tmp_path / "plain", "--quiet")
    common = ["--text", TEXT, "--context", str(TOKENS), "--max-tokens", str(TOKENS), "--json",
              "--reference", "none"]
    stored = json.loads(run("eval", tmp / "q", *common).stdout)
    calibrated_at_eval = json.loads(run("eval", tmp_path / "plain", *common, "--kv-scales", "calibrate").stdout)
    uncalibrated = json.loads(run("eval", tmp_path / "plain", *common).stdout)
    assert stored["perplexity"] == calibrated_at_eval["perplexity"]
    assert stored["perplexity"] != uncalibrated["perplexity"]


def test_without_scales_the_checkpoint_declares_none(calibrated, tmp_path):
    _, model, _ = calibrated
    run("quantize", model, tmp_path / "plain", "--quiet")
    hf = json.loads((tmp_path / "plain" / "hf_quant_config.json").read_text())
    raw, _ = read_safetensors(tmp_path / "plain" / "model.safetensors")
    assert hf["quantization"]["kv_cache_quant_algo"] is None
    assert not [k for k in raw if k.endswith(("k_scale", "v_scale"))]


@pytest.mark.parametrize("args, message", [
    (["--kv-scales", "calibrate"], "--kv-scales calibrate needs --calibration-text"),
    (["--calibration-text", str(TEXT)], "only read with --kv-scales calibrate"),
])
def test_bad_requests_are_named(calibrated, tmp_path, args, message):
    _, model, _ = calibrated
    p = run("quantize", model, tmp_path / "out", "--quiet", *args, check=False)
    assert p.returncode != 0 and message in p.stderr
    assert not (tmp_path / "out").exists()


def test_a_model_without_tokenizer_is_named(calibrated, tmp_path):
    _, model, _ = calibrated
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("config.json", "model.safetensors"):
        (bare / f).write_bytes((model / f).read_bytes())
    p = run("quantize", bare, tmp_path / "out", "--quiet", "--kv-scales", "calibrate", "--calibration-text", TEXT,
            check=False)
    assert p.returncode != 0 and "tokenizer" in p.stderr


def test_multimodal_checkpoint_gets_scales_for_its_text_layers_only(calibrated, tmp_path):
    """Gemma3ForConditionalGeneration: text layers under language_model.model., a vision tower
    with layers of its own, which get no KV scales."""
    _, model, _ = calibrated
    mm = tmp_path / "mm"
    mm.mkdir()
    raw, _ = read_safetensors(model / "model.safetensors")
    tensors = {"language_model." + k: v for k, (_, v) in raw.items()}
    tensors["vision_tower.vision_model.encoder.layers.0.self_attn.k_proj.weight"] = np.zeros((32, 32), np.uint16)
    tensors["vision_tower.vision_model.encoder.layers.0.self_attn.v_proj.weight"] = np.zeros((32, 32), np.uint16)
    save_bf16_aware(tensors, mm / "model.safetensors", bf16=True)
    text = json.loads((model / "config.json").read_text())
    text.pop("architectures")
    (mm / "config.json").write_text(json.dumps({"architectures": ["Gemma3ForConditionalGeneration"],
                                                "model_type": "gemma3", "text_config": text}))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (mm / f).write_bytes((model / f).read_bytes())
    run("quantize", mm, tmp_path / "q", "--quiet", "--kv-scales", "calibrate", "--calibration-text", TEXT,
        "--calibration-tokens", TOKENS)
    raw_q, _ = read_safetensors(tmp_path / "q" / "model.safetensors")
    scales = sorted(k for k in raw_q if k.endswith(("k_scale", "v_scale")))
    layers = config("gemma3")["num_hidden_layers"]
    assert scales == sorted(f"language_model.model.layers.{i}.self_attn.{p}" for i in range(layers)
                            for p in ("k_proj.k_scale", "v_proj.v_scale"))
    info = json.loads(run("inspect", tmp_path / "q", "--json").stdout)
    assert info["checkpoint_kv_scales"] == layers
