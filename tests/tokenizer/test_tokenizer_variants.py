"""Options the real files leave at their defaults, checked against Hugging Face by editing the
real tokenizer.json: added-token flags (single_word, lstrip, rstrip, normalized), every Split
behavior and invert, ByteLevel with its own regex and prefix space, other normalizers and
decoders, ignore_merges, a TemplateProcessing post-processor and no decoder at all."""

import copy
import json

import pytest
from tokenizers import Tokenizer

from conftest import run_jsonl
from corpus import build_corpus

DOCS = [d for d in build_corpus(min_bytes=60_000, seed=99) if len(d) < 3000][:300] + [
    "a <think> b</think>c  <think>\t\n</think>  ", "x<think>y", " <think> ", "<think>",
    "word<|im_end|>word <|im_end|> <|im_end|>x", "Hello  world\n\n  end  ", "don't stop",
    "\u00e9t\u00e9 cafe\u0301 \u212b", "mmm\u00a0mmm", "<unused5> <unused5>x <start_of_turn>",
]

_cache = {}


def load_json(path):
    if path not in _cache:
        with open(path, encoding="utf-8") as f:
            _cache[path] = json.load(f)
    return copy.deepcopy(_cache[path])


def set_added(j, content, **flags):
    for t in j["added_tokens"]:
        if t["content"] == content:
            t.update(flags)
            return
    raise KeyError(content)


def qwen_variants():
    """Several independent options per file: each file costs a load on both sides."""

    def flags_decoder_template(j):
        set_added(j, "<think>", lstrip=True, rstrip=True)
        set_added(j, "</think>", single_word=True)
        set_added(j, "<|im_end|>", lstrip=True, single_word=True)
        set_added(j, "<tool_call>", normalized=True, special=False)
        # Hugging Face's Strip panics on an empty token when stop > 0, so only start is checked.
        j["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
             "use_regex": False},
            {"type": "Replace", "pattern": {"String": "ab"}, "content": "<AB>"},
            {"type": "Strip", "content": " ", "start": 2, "stop": 0}]}
        j["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {
                "<|im_start|>": {"id": "<|im_start|>", "ids": [151644],
                                 "tokens": ["<|im_start|>"]},
                "<|endoftext|>": {"id": "<|endoftext|>", "ids": [151643],
                                  "tokens": ["<|endoftext|>"]}}}

    def every_split_behavior(j):
        def split(pattern, behavior, invert=False):
            return {"type": "Split", "pattern": pattern, "behavior": behavior, "invert": invert}
        qwen_split = j["pre_tokenizer"]["pretokenizers"][0]
        j["pre_tokenizer"]["pretokenizers"] = [
            split({"String": "\n"}, "MergedWithPrevious"),
            split({"Regex": "[0-9]"}, "MergedWithNext", invert=True),
            split({"Regex": "\\s"}, "Contiguous"),
            split({"String": "e"}, "Removed"),
            split({"Regex": "[,.;]"}, "Isolated", invert=True),
            dict(qwen_split, behavior="MergedWithPrevious"),
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
             "use_regex": False}]

    def byte_level_regex_normalizers_no_decoder(j):
        j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                              "use_regex": True}
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Replace", "pattern": {"String": "  "}, "content": " "},
            {"type": "Prepend", "prepend": "##"},
            {"type": "Strip", "strip_left": False, "strip_right": True}]}
        j["decoder"] = None

    def nfd_regex_replace_ignore_merges(j):
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "NFD"}, {"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"}]}
        j["model"]["ignore_merges"] = True

    return {"flags_decoder_template": flags_decoder_template,
            "every_split_behavior": every_split_behavior,
            "byte_level_regex_normalizers_no_decoder": byte_level_regex_normalizers_no_decoder,
            "nfd_regex_replace_ignore_merges": nfd_regex_replace_ignore_merges}


def gemma_variants():
    def split_removed_strip_decoder_flags(j):
        j["normalizer"] = None
        j["pre_tokenizer"] = {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed",
                              "invert": False}
        j["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": "<", "start": 1, "stop": 0}]}
        set_added(j, "<start_of_turn>", rstrip=True)
        set_added(j, "<unused5>", single_word=True, lstrip=True)

    return {"split_removed_strip_decoder_flags": split_removed_strip_decoder_flags}


def check_variant(fp4llm_bin, base_dir, edit, tmp_path):
    j = load_json(str(base_dir / "tokenizer.json"))
    edit(j)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with open(model_dir / "tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    requests = []
    for doc in DOCS:
        requests.append({"text": doc, "decode": True})
        requests.append({"text": doc, "parse_special": False})
    results, _ = run_jsonl(fp4llm_bin, model_dir, requests, tmp_path)
    hf = [e.ids for e in tok.encode_batch(DOCS)]
    tok.encode_special_tokens = True
    hf_plain = [e.ids for e in tok.encode_batch(DOCS)]
    tok.encode_special_tokens = False
    hf_text = tok.decode_batch(hf, skip_special_tokens=False)
    hf_skip = tok.decode_batch(hf, skip_special_tokens=True)
    failures = []
    for i, doc in enumerate(DOCS):
        r, r_plain = results[2 * i], results[2 * i + 1]
        for kind, ours, ref in (("encode", r["ids"], hf[i]),
                                ("encode parse_special=False", r_plain["ids"], hf_plain[i]),
                                ("decode", r["text"], hf_text[i]),
                                ("decode skip", r["text_skip"], hf_skip[i]),
                                ("stream", r["stream"], hf_text[i]),
                                ("stream skip", r["stream_skip"], hf_skip[i])):
            if ours != ref:
                failures.append(f"{kind} of {doc[:80]!r}: ours {str(ours)[:160]} "
                                f"hf {str(ref)[:160]}")
        if not r["stream_valid_pieces"]:
            failures.append(f"stream of {doc[:80]!r}: a piece was not valid UTF-8")
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


@pytest.mark.parametrize("variant", list(qwen_variants()))
def test_qwen3_variant(variant, fp4llm_bin, tokenizer_dirs, tmp_path):
    check_variant(fp4llm_bin, tokenizer_dirs["qwen3"], qwen_variants()[variant], tmp_path)


@pytest.mark.parametrize("variant", list(gemma_variants()))
def test_gemma3_variant(variant, fp4llm_bin, tokenizer_dirs, tmp_path):
    check_variant(fp4llm_bin, tokenizer_dirs["gemma3"], gemma_variants()[variant], tmp_path)
