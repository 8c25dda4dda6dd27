"""The MSE block-scale search (`fp4llm quantize --scale-search mse`, and quantize-at-load of
GGUF and plain checkpoints) against the numpy reference's independent implementation of the same
search (nvfp4_reference.quantize_nvfp4(w, "mse")), bit for bit."""
import numpy as np

from helpers import dequant_dump, qwen3_config, read_safetensors, run, write_plain_model
from nvfp4_reference import dequantize_nvfp4, quantize_nvfp4
from test_gguf import write_gguf


def sq_error(w, q):
    return float(((dequantize_nvfp4(*q).astype(np.float64) - w) ** 2).sum())


def test_quantize_with_scale_search_is_bit_exact_against_numpy(tmp_path):
    values = write_plain_model(tmp_path / "src", qwen3_config(), dtype="f32", seed=4)
    run("quantize", tmp_path / "src", tmp_path / "dst", "--scale-search", "mse", "--quiet")
    out, _ = read_safetensors(tmp_path / "dst" / "model.safetensors")
    changed = total = 0
    for name, w in values.items():
        if not name.endswith("_proj.weight"):
            continue
        m = name[: -len(".weight")]
        packed, scales, g = quantize_nvfp4(w, "mse")
        np.testing.assert_array_equal(out[m + ".weight"][1], packed, err_msg=m)
        np.testing.assert_array_equal(out[m + ".weight_scale"][1], scales, err_msg=m)
        assert out[m + ".weight_scale_2"][1].view(np.uint32) == np.float32(g).view(np.uint32)
        amax = quantize_nvfp4(w)
        changed += int((scales != amax[1]).sum())
        total += scales.size
        # The search never does worse than ModelOpt's choice: f = 1 is one of its candidates.
        assert sq_error(w, (packed, scales, g)) <= sq_error(w, amax), m
    assert changed > total // 10, (changed, total)  # the search is not a no-op


def test_default_stays_modelopt_amax(tmp_path):
    values = write_plain_model(tmp_path / "src", qwen3_config(), dtype="bf16", seed=5)
    run("quantize", tmp_path / "src", tmp_path / "dst", "--quiet")
    out, _ = read_safetensors(tmp_path / "dst" / "model.safetensors")
    m = "model.layers.0.mlp.down_proj"
    np.testing.assert_array_equal(out[m + ".weight_scale"][1], quantize_nvfp4(values[m + ".weight"])[1])


def test_gguf_requantization_with_scale_search(tmp_path):
    ref = write_gguf(tmp_path / "m.gguf", np.random.default_rng(2))
    got, _ = dequant_dump(tmp_path / "m.gguf", tmp_path / "d.safetensors", "mse")
    w = ref["blk.1.ffn_gate.weight"].astype(np.float32)
    np.testing.assert_array_equal(got["model.layers.1.mlp.gate_proj.dequant"],
                                  dequantize_nvfp4(*quantize_nvfp4(w, "mse")))
    w = ref["blk.0.attn_q.weight"].astype(np.float32)
    np.testing.assert_array_equal(got["model.layers.0.self_attn.q_proj.dequant"],
                                  dequantize_nvfp4(*quantize_nvfp4(w, "mse")))
