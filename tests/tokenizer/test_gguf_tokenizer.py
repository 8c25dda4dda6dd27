"""Tokenizers built from GGUF metadata (tokenizer.ggml.*) against Hugging Face `tokenizers` on the
real tokenizer.json files.

Gemma 3: the real default-model GGUF (a "llama" SentencePiece vocabulary with scores, no merges)
against the real Gemma 3 tokenizer.json. Qwen3: a GGUF written here with the `gguf` package from
the real Qwen3 tokenizer.json the way llama.cpp's convert_hf_to_gguf.py writes a "gpt2" vocabulary.
"""

import json
import subprocess
from pathlib import Path

import gguf
from tokenizers import Tokenizer

from conftest import run_jsonl
from corpus import build_corpus

ROOT = Path(__file__).resolve().parents[2]
CORPUS = build_corpus(min_bytes=60_000, seed=77)


def default_gguf():
    out = subprocess.run(["bash", str(ROOT / "tools/default_model.sh")], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


def looks_special(token):
    """convert_hf_to_gguf.py's does_token_look_special: such added tokens become CONTROL."""
    return (token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (token.startswith("<|") and token.endswith("|>"))
            or (token.startswith("<unused") and token.endswith(">")))


def write_qwen3_gguf(tokenizer_dir, path, vocab_size=151936, pre="qwen2"):
    """convert_hf_to_gguf.py's get_vocab_base + gguf.SpecialVocab for Qwen3: ids padded to the
    model's vocab_size with [PADn] UNUSED tokens, added tokens CONTROL or USER_DEFINED."""
    tj = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    cfg = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    reverse = {i: t for t, i in tj["model"]["vocab"].items()}
    added = {a["id"]: a for a in tj["added_tokens"]}
    for i, a in added.items():
        reverse[i] = a["content"]
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(reverse[i])
            special = added[i]["special"] or looks_special(reverse[i])
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
    w = gguf.GGUFWriter(str(path), "qwen3")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]])
    w.add_eos_token_id(tokens.index(cfg["eos_token"]))
    w.add_pad_token_id(tokens.index(cfg["pad_token"]))
    w.add_bos_token_id(tokens.index("<|endoftext|>"))  # Qwen3's config.json bos_token_id
    w.add_add_bos_token(False)
    w.add_chat_template(cfg["chat_template"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def check_corpus(fp4llm_bin, gguf_path, hf, tmp_path):
    requests = []
    for doc in CORPUS:
        requests.append({"text": doc, "decode": True})
        requests.append({"text": doc, "add_special_tokens": False})
    results, _ = run_jsonl(fp4llm_bin, gguf_path, requests, tmp_path)
    hf_ids = [e.ids for e in hf.encode_batch(CORPUS)]
    hf_no_add = [e.ids for e in hf.encode_batch(CORPUS, add_special_tokens=False)]
    for k, doc in enumerate(CORPUS):
        ours, no_add = results[2 * k], results[2 * k + 1]
        i = first_difference(ours["ids"], hf_ids[k])
        assert ours["ids"] == hf_ids[k], (
            f"document {k} differs at {i}: ours {ours['ids'][i:i + 5]} hf {hf_ids[k][i:i + 5]} "
            f"{[hf.id_to_token(t) for t in hf_ids[k][i:i + 5]]} text {doc[:120]!r}")
        assert no_add["ids"] == hf_no_add[k], f"document {k}, add_special_tokens=False"
        assert ours["text"] == hf.decode(hf_ids[k], skip_special_tokens=False), f"decode of document {k}"


def test_gemma3_gguf_vocabulary_matches_hugging_face(fp4llm_bin, tokenizer_dirs, tmp_path):
    # The real tokenizer.json has one added token past the model's 262144 rows
    # (<image_soft_token>, id 262144, for the multimodal models); the GGUF of this text model
    # cannot hold it, so the reference leaves it out and encodes that text as plain text.
    tj = json.loads((tokenizer_dirs["gemma3"] / "tokenizer.json").read_text())
    tj["added_tokens"] = [a for a in tj["added_tokens"] if a["id"] < 262144]
    hf = Tokenizer.from_str(json.dumps(tj))
    assert sum("<image_soft_token>" in d for d in CORPUS) > 0  # the case is exercised
    check_corpus(fp4llm_bin, default_gguf(), hf, tmp_path)


def test_qwen3_gguf_vocabulary_matches_hugging_face(fp4llm_bin, tokenizer_dirs, tmp_path):
    path = write_qwen3_gguf(tokenizer_dirs["qwen3"], tmp_path / "qwen3_vocab.gguf")
    hf = Tokenizer.from_file(str(tokenizer_dirs["qwen3"] / "tokenizer.json"))
    check_corpus(fp4llm_bin, path, hf, tmp_path)
    # Padding ids ([PADn], UNUSED) are no tokens: decode skips them as Hugging Face does.
    p = subprocess.run([str(fp4llm_bin), "tokenize", str(path), "--decode", "9707,151700,1879"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == hf.decode([9707, 151700, 1879])


def test_unsupported_gguf_pre_tokenizer_is_named(fp4llm_bin, tokenizer_dirs, tmp_path):
    path = write_qwen3_gguf(tokenizer_dirs["qwen3"], tmp_path / "other.gguf", pre="llama-bpe")
    p = subprocess.run([str(fp4llm_bin), "tokenize", str(path), "hi"], capture_output=True, text=True)
    assert p.returncode != 0
    assert "pre-tokenizer 'llama-bpe' is not supported" in p.stderr, p.stderr
