"""fp4llm's tokenizer against Hugging Face `tokenizers` on the real Qwen3 and Gemma3 files.

Every expected value comes from the Python package; fp4llm runs once per tokenizer over the
whole (>1 MB) corpus through `fp4llm tokenize --jsonl`.
"""

import random

import pytest
from tokenizers import Tokenizer

from conftest import run_jsonl
from corpus import build_corpus

CORPUS = build_corpus()
ADD_SPECIAL_OFF_EVERY = 4  # also check add_special_tokens=False on every 4th document


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe(kind, doc_index, ours, ref, tok=None):
    i = first_difference(ours, ref)
    msg = f"{kind}: document {doc_index} differs at position {i}: "
    if isinstance(ours, str):
        return msg + f"ours {ours[max(0, i - 20):i + 20]!r} hf {ref[max(0, i - 20):i + 20]!r}"
    doc = CORPUS[doc_index] if doc_index < len(CORPUS) else ""
    return (msg + f"ours {ours[max(0, i - 3):i + 5]} hf {ref[max(0, i - 3):i + 5]} "
            f"hf tokens {[tok.id_to_token(t) for t in ref[max(0, i - 3):i + 5]]} "
            f"text {doc[:200]!r}")


def random_id_sequences(rng, vocab, special_ids, count):
    """Decoder inputs no encoder produces: random ids, specials, ids past the vocabulary."""
    seqs = []
    for _ in range(count):
        n = rng.randint(0, 40)
        seq = []
        for _ in range(n):
            r = rng.random()
            if r < 0.1:
                seq.append(rng.choice(special_ids))
            elif r < 0.15:
                seq.append(vocab + rng.randint(0, 50))  # unknown: Hugging Face drops them
            elif r < 0.4:
                seq.append(rng.randint(0, 1000))  # byte tokens and short pieces
            else:
                seq.append(rng.randrange(vocab))
        seqs.append(seq)
    return seqs


@pytest.mark.parametrize("name", ["qwen3", "gemma3"])
def test_corpus_matches_hugging_face(name, fp4llm_bin, tokenizer_dirs, tmp_path):
    total_bytes = sum(len(d.encode()) for d in CORPUS)
    assert total_bytes >= 1_000_000
    tok = Tokenizer.from_file(str(tokenizer_dirs[name] / "tokenizer.json"))
    vocab = tok.get_vocab_size(with_added_tokens=True)
    special_ids = [i for i, t in tok.get_added_tokens_decoder().items() if t.special]
    id_seqs = random_id_sequences(random.Random(7), vocab, special_ids, 300)

    requests = []
    for i, doc in enumerate(CORPUS):
        requests.append({"text": doc, "parse_special": True, "decode": True})
        requests.append({"text": doc, "parse_special": False})
        if i % ADD_SPECIAL_OFF_EVERY == 0:
            requests.append({"text": doc, "add_special_tokens": False})
    requests += [{"ids": seq} for seq in id_seqs]
    results, timing = run_jsonl(fp4llm_bin, tokenizer_dirs[name], requests, tmp_path)
    assert timing["encoded_bytes"] >= 2 * total_bytes

    # Hugging Face reference, with encode_special_tokens toggled for parse_special=False.
    tok.encode_special_tokens = False
    hf_special = [e.ids for e in tok.encode_batch(CORPUS)]
    hf_no_add = [e.ids for e in tok.encode_batch(CORPUS[::ADD_SPECIAL_OFF_EVERY],
                                                 add_special_tokens=False)]
    tok.encode_special_tokens = True
    hf_plain = [e.ids for e in tok.encode_batch(CORPUS)]
    tok.encode_special_tokens = False
    hf_text = tok.decode_batch(hf_special, skip_special_tokens=False)
    hf_text_skip = tok.decode_batch(hf_special, skip_special_tokens=True)
    hf_ids_text = tok.decode_batch(id_seqs, skip_special_tokens=False)
    hf_ids_text_skip = tok.decode_batch(id_seqs, skip_special_tokens=True)

    failures, pos, round_trips = [], 0, 0
    for i, doc in enumerate(CORPUS):
        r = results[pos]
        checks = [("encode", r["ids"], hf_special[i]),
                  ("encode parse_special=False", results[pos + 1]["ids"], hf_plain[i]),
                  ("decode", r["text"], hf_text[i]),
                  ("decode skip_special", r["text_skip"], hf_text_skip[i]),
                  ("stream", r["stream"], hf_text[i]),
                  ("stream skip_special", r["stream_skip"], hf_text_skip[i])]
        pos += 2
        if i % ADD_SPECIAL_OFF_EVERY == 0:
            checks.append(("encode add_special_tokens=False", results[pos]["ids"],
                           hf_no_add[i // ADD_SPECIAL_OFF_EVERY]))
            pos += 1
        for kind, ours, ref in checks:
            if ours != ref:
                failures.append(describe(kind, i, ours, ref, tok))
        if not r["stream_valid_pieces"]:
            failures.append(f"stream: document {i}: a pushed piece was not valid UTF-8")
        # Where Hugging Face round-trips (with or without the special tokens), so must we.
        for key, ref in (("text", hf_text[i]), ("text_skip", hf_text_skip[i])):
            if ref == doc:
                round_trips += 1
                if r[key] != doc:
                    failures.append(f"round trip ({key}): document {i}")
                break
    for k, seq in enumerate(id_seqs):
        r = results[pos + k]
        for kind, ours, ref in (("decode random ids", r["text"], hf_ids_text[k]),
                                ("decode random ids skip", r["text_skip"], hf_ids_text_skip[k]),
                                ("stream random ids", r["stream"], hf_ids_text[k]),
                                ("stream random ids skip", r["stream_skip"],
                                 hf_ids_text_skip[k])):
            if ours != ref:
                failures.append(f"{kind} {seq}: ours {ours!r} hf {ref!r}")
        if not r["stream_valid_pieces"]:
            failures.append(f"stream random ids {seq}: a pushed piece was not valid UTF-8")
    assert round_trips > len(CORPUS) // 4
    assert not failures, f"{len(failures)} mismatches, first ones:\n" + "\n".join(failures[:15])
