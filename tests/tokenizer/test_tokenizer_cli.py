"""`fp4llm tokenize` as a user runs it: output formats, decode mode, and clear errors for
input fp4llm cannot handle (never silently wrong ids)."""

import json
import subprocess

import pytest
from tokenizers import Tokenizer

TEXT = "<|im_start|>user\nHello, wörld! 你好 👍🏽<|im_end|>\n<start_of_turn>model\n\n  x"

TINY = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": 5, "content": "<s>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True}],
    "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
              "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": False,
              "byte_fallback": False, "ignore_merges": False,
              "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "c": 4},
              "merges": [["a", "b"]]},
}


def run(fp4llm_bin, *args, input_text=None):
    return subprocess.run([str(fp4llm_bin), "tokenize", *map(str, args)], capture_output=True,
                          text=True, input=input_text,
                          stdin=subprocess.DEVNULL if input_text is None else None)


def test_encode_and_decode_formats(fp4llm_bin, tokenizer_dirs, tmp_path):
    d = tokenizer_dirs["qwen3"]
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    ref = tok.encode(TEXT).ids
    out = run(fp4llm_bin, d, TEXT)
    assert out.returncode == 0, out.stderr
    assert [int(x) for x in out.stdout.split()] == ref
    assert json.loads(run(fp4llm_bin, d, TEXT, "--json").stdout) == ref
    text_file = tmp_path / "in.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    assert json.loads(run(fp4llm_bin, d, "--text-file", text_file, "--json").stdout) == ref

    tok.encode_special_tokens = True
    plain = tok.encode(TEXT).ids
    tok.encode_special_tokens = False
    assert json.loads(run(fp4llm_bin, d, TEXT, "--json", "--no-special").stdout) == plain
    special = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    assert not special & set(plain), "special token injected"
    no_add = tok.encode(TEXT, add_special_tokens=False).ids
    assert json.loads(run(fp4llm_bin, d, TEXT, "--json", "--no-add-special").stdout) == no_add

    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ref))
    out = run(fp4llm_bin, d, "--decode", "--ids-file", ids_file, "--json")
    assert json.loads(out.stdout) == tok.decode(ref, skip_special_tokens=False)
    ids_file.write_text(" ".join(map(str, ref)))
    out = run(fp4llm_bin, d, "--decode", "--ids-file", ids_file, "--skip-special", "--json")
    assert json.loads(out.stdout) == tok.decode(ref, skip_special_tokens=True)


def test_gemma_bos_and_plain_special_text(fp4llm_bin, tokenizer_dirs):
    d = tokenizer_dirs["gemma3"]
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    out = run(fp4llm_bin, d, TEXT, "--json", "--no-special")
    tok.encode_special_tokens = True
    assert json.loads(out.stdout) == tok.encode(TEXT).ids
    assert json.loads(out.stdout)[0] == 2  # <bos> still added once, as HF does
    assert 2 not in json.loads(out.stdout)[1:]


def write_tiny(tmp_path, edit=None):
    j = json.loads(json.dumps(TINY))
    if edit:
        edit(j)
    d = tmp_path / "tiny"
    d.mkdir(exist_ok=True)
    (d / "tokenizer.json").write_text(json.dumps(j), encoding="utf-8")
    return d


@pytest.mark.parametrize("merges", ["pairs", "strings"])
@pytest.mark.parametrize("fuse_unk", [False, True])
def test_tiny_tokenizer_matches_hugging_face(merges, fuse_unk, fp4llm_bin, tmp_path):
    def edit(j):
        if merges == "strings":
            j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
        j["model"]["fuse_unk"] = fuse_unk
    d = write_tiny(tmp_path, edit)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    for text in ["ab", "abcab", "xyz", "a<s>bb", "", "ababab c", "xxabyy"]:
        out = run(fp4llm_bin, d, text, "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == tok.encode(text).ids, text


@pytest.mark.parametrize("field,value,expected", [
    ("model.type", "Unigram", "model type 'Unigram'"),
    ("model.dropout", 0.1, "dropout"),
    ("normalizer", {"type": "Lowercase"}, "normalizer type 'Lowercase'"),
    ("pre_tokenizer", {"type": "Whitespace"}, "pre_tokenizer type 'Whitespace'"),
    ("pre_tokenizer", {"type": "Metaspace", "replacement": "_"}, "pre_tokenizer type 'Metaspace'"),
    ("decoder", {"type": "WordPiece"}, "decoder type 'WordPiece'"),
    ("post_processor", {"type": "Bogus"}, "post_processor type 'Bogus'"),
    ("truncation", {"max_length": 5}, "'truncation'"),
    ("model.merges", [["a", "zz"]], "not in the vocabulary"),
    ("added_tokens", [{"id": 9, "content": "<s>", "special": True}], "assigns id 5"),
    ("pre_tokenizer", {"type": "Split", "pattern": {"Regex": "(unclosed"},
                       "behavior": "Isolated", "invert": False}, "does not compile"),
])
def test_unsupported_components_fail_clearly(field, value, expected, fp4llm_bin, tmp_path):
    def edit(j):
        keys = field.split(".")
        target = j
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    d = write_tiny(tmp_path, edit)
    out = run(fp4llm_bin, d, "ab")
    assert out.returncode != 0
    assert expected in out.stderr, out.stderr
    assert "tokenizer.json" in out.stderr, out.stderr


def test_bad_input_fails_clearly(fp4llm_bin, tokenizer_dirs, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc \xff\xfe def")
    out = run(fp4llm_bin, tokenizer_dirs["qwen3"], "--text-file", bad)
    assert out.returncode != 0 and "not valid UTF-8" in out.stderr, out.stderr
    out = run(fp4llm_bin, tmp_path, "x")
    assert out.returncode != 0 and "tokenizer.json" in out.stderr, out.stderr
    out = run(fp4llm_bin, tokenizer_dirs["qwen3"], "--decode", "12 x3")
    assert out.returncode != 0 and "not a token id" in out.stderr, out.stderr
    # Without TEXT the text comes from standard input.
    out = run(fp4llm_bin, tokenizer_dirs["qwen3"], "--json", input_text="hi <|im_end|>")
    tok = Tokenizer.from_file(str(tokenizer_dirs["qwen3"] / "tokenizer.json"))
    assert json.loads(out.stdout) == tok.encode("hi <|im_end|>").ids
