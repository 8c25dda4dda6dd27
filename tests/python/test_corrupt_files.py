"""Bad checkpoints give a clear error naming the file and tensor, exit code 1, and never a crash
or an out-of-bounds read."""
import json
import shutil
import struct

import numpy as np
import pytest

from helpers import qwen3_config, run, save_tensors, write_plain_model
from test_checkpoint_readers import make_quantized_model


def header_of(path):
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_raw(path, header, data):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.fixture
def plain(tmp_path):
    folder = tmp_path / "plain"
    write_plain_model(folder, qwen3_config())
    return folder


def expect_error(folder, *needles, command="inspect"):
    p = run(command, folder, check=False) if command == "inspect" else \
        run("quantize", folder, folder.parent / "out", "--quiet", check=False)
    assert p.returncode == 1, f"exit {p.returncode}, stderr: {p.stderr}"
    assert p.stderr.startswith("error: "), p.stderr
    for n in needles:
        assert n in p.stderr, f"{n!r} not in {p.stderr!r}"
    return p.stderr


def edit_header(folder, fn):
    f = folder / "model.safetensors"
    header, data = header_of(f)
    fn(header)
    write_raw(f, header, data)


Q = "model.layers.0.self_attn.q_proj.weight"


def test_file_shorter_than_length_prefix(plain):
    (plain / "model.safetensors").write_bytes(b"\x01\x02\x03")
    expect_error(plain, "model.safetensors", "truncated")


def test_absurd_header_length(plain):
    data = (plain / "model.safetensors").read_bytes()
    (plain / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + data[8:])
    expect_error(plain, "model.safetensors", "100 MB limit")


def test_header_longer_than_file(plain):
    (plain / "model.safetensors").write_bytes(struct.pack("<Q", 5000) + b"{}")
    expect_error(plain, "model.safetensors", "runs past the end of the file")


def test_truncated_header_json(plain):
    f = plain / "model.safetensors"
    data = f.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    f.write_bytes(data[:8 + n // 2])
    expect_error(plain, "model.safetensors", "runs past the end")


def test_header_not_json(plain):
    write_raw(plain / "model.safetensors", b"{not json at all", b"")
    expect_error(plain, "model.safetensors", "not valid JSON")


def test_header_not_an_object(plain):
    write_raw(plain / "model.safetensors", b"[1, 2, 3]", b"")
    expect_error(plain, "not a JSON object")


@pytest.mark.parametrize("command", ["inspect", "quantize"])
def test_truncated_data(plain, command):
    f = plain / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    expect_error(plain, "model.safetensors", "past the end of the data", "truncated or corrupt",
                 command=command)


def test_offsets_past_end(plain):
    edit_header(plain, lambda h: h[Q].update(data_offsets=[h[Q]["data_offsets"][0], 10 ** 12]))
    expect_error(plain, Q, "past the end of the data")


def test_reversed_offsets(plain):
    edit_header(plain, lambda h: h[Q].update(data_offsets=[100, 50]))
    expect_error(plain, Q, "reversed")


def test_unknown_dtype(plain):
    edit_header(plain, lambda h: h[Q].update(dtype="F9"))
    expect_error(plain, Q, "unsupported dtype 'F9'")


def test_wrong_dtype_size(plain):
    edit_header(plain, lambda h: h[Q].update(dtype="F32"))  # same bytes, twice the element size
    expect_error(plain, Q, "needs")


def test_shape_does_not_match_bytes(plain):
    edit_header(plain, lambda h: h[Q].update(shape=[h[Q]["shape"][0], h[Q]["shape"][1] + 16]))
    expect_error(plain, Q, "needs")


def test_negative_dimension(plain):
    edit_header(plain, lambda h: h[Q].update(shape=[-4, 16]))
    expect_error(plain, Q, "negative")


def test_non_integer_offsets(plain):
    edit_header(plain, lambda h: h[Q].update(data_offsets=["0", 5]))
    expect_error(plain, Q, "not an integer")


def test_overflowing_shape(plain):
    edit_header(plain, lambda h: h[Q].update(shape=[2 ** 62, 2 ** 62]))
    expect_error(plain, Q, "too large")


def test_missing_config(plain):
    (plain / "config.json").unlink()
    expect_error(plain, "config.json is missing")


def test_no_safetensors(plain):
    (plain / "model.safetensors").unlink()
    expect_error(plain, "no .safetensors files")


def test_non_finite_weight_cannot_be_quantized(tmp_path):
    folder = tmp_path / "nan"
    write_plain_model(folder, qwen3_config(), dtype="f32")
    from helpers import read_safetensors
    tensors = {k: v[1].copy() for k, v in read_safetensors(folder / "model.safetensors")[0].items()}
    tensors[Q][1, 5] = np.nan
    save_tensors(tensors, folder / "model.safetensors")
    expect_error(folder, Q, "non-finite", command="quantize")


@pytest.fixture
def modelopt(tmp_path):
    folder = tmp_path / "mo"
    make_quantized_model(folder, "modelopt")
    return folder


def rewrite_modelopt(folder, fn):
    from helpers import read_safetensors
    raw, _ = read_safetensors(folder / "model.safetensors")
    tensors = {k: v[1].copy() for k, v in raw.items()}
    relabel = {k: v[0] for k, v in raw.items() if v[0] in ("BF16", "F8_E4M3")}
    fn(tensors, relabel)
    save_tensors(tensors, folder / "model.safetensors", {k: v for k, v in relabel.items() if k in tensors})


M = "model.layers.1.mlp.up_proj"


def test_missing_block_scales(modelopt):
    rewrite_modelopt(modelopt, lambda t, r: t.pop(M + ".weight_scale"))
    expect_error(modelopt, M + ".weight", "weight_scale")


def test_block_scales_of_wrong_shape(modelopt):
    def fn(t, r):
        t[M + ".weight_scale"] = t[M + ".weight_scale"][:, :-1].copy()
    rewrite_modelopt(modelopt, fn)
    expect_error(modelopt, M + ".weight_scale", "expected F8_E4M3")


def test_block_scales_of_wrong_dtype(modelopt):
    rewrite_modelopt(modelopt, lambda t, r: r.pop(M + ".weight_scale"))  # stays U8
    expect_error(modelopt, M + ".weight_scale", "expected F8_E4M3")


def test_zero_global_scale(modelopt):
    def fn(t, r):
        t[M + ".weight_scale_2"] = np.array(0.0, np.float32)
    rewrite_modelopt(modelopt, fn)
    expect_error(modelopt, M, "finite positive")


def test_orphan_scale(modelopt):
    def fn(t, r):
        t.pop(M + ".weight")
    rewrite_modelopt(modelopt, fn)
    expect_error(modelopt, M + ".", "scale without a packed U8 " + M + ".weight")


@pytest.fixture
def sharded(tmp_path):
    folder = tmp_path / "sh"
    make_quantized_model(folder, "modelopt", shard=True)
    return folder


def test_index_lists_absent_tensor(sharded):
    idx = json.loads((sharded / "model.safetensors.index.json").read_text())
    idx["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors"
    (sharded / "model.safetensors.index.json").write_text(json.dumps(idx))
    expect_error(sharded, "model.layers.9.mlp.up_proj.weight", "does not contain it")


def test_missing_shard(sharded):
    (sharded / "model-00002-of-00002.safetensors").unlink()
    expect_error(sharded, "model-00002-of-00002.safetensors", "missing")


def test_tensor_in_two_shards(sharded):
    shutil.copy(sharded / "model-00001-of-00002.safetensors", sharded / "model-extra.safetensors")
    idx = json.loads((sharded / "model.safetensors.index.json").read_text())
    idx["weight_map"]["zzz.extra"] = "model-extra.safetensors"
    (sharded / "model.safetensors.index.json").write_text(json.dumps(idx))
    expect_error(sharded, "appears in both")


def test_index_escaping_the_folder(sharded):
    idx = json.loads((sharded / "model.safetensors.index.json").read_text())
    idx["weight_map"]["model.norm.weight"] = "../../etc/passwd"
    (sharded / "model.safetensors.index.json").write_text(json.dumps(idx))
    expect_error(sharded, "not a file name inside the model folder")


def test_index_not_json(sharded):
    (sharded / "model.safetensors.index.json").write_text("{oops")
    expect_error(sharded, "model.safetensors.index.json", "not valid JSON")
