#!/usr/bin/env python3
"""Encode throughput of fp4llm's tokenizer against Hugging Face `tokenizers`, single-threaded,
on the deterministic >1 MB test corpus (tests/tokenizer/corpus.py).

fp4llm is timed inside `fp4llm tokenize --jsonl --timing` around the encode calls only (no
process start, no tokenizer load, no JSON I/O). Hugging Face is timed around encode_batch with
one Rayon thread (its lowest-overhead path) and around a Python loop of encode() calls. Each
figure is the best of --repeat runs.

    .venv/bin/python bench/tokenizer_bench.py --bin build/fp4llm [--out bench/results/x.json]
"""

import os

# Must be set before tokenizers is imported: one thread, no parallel batch encoding.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tokenizer"))
from corpus import build_corpus  # noqa: E402


def fp4llm_encode_seconds(binary, model_dir, docs, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with open(inp, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}) + "\n")
        best, load = float("inf"), None
        for _ in range(repeat):
            proc = subprocess.run([str(binary), "tokenize", str(model_dir), "--jsonl", str(inp),
                                   "--output", str(out), "--timing"],
                                  capture_output=True, text=True, check=True)
            timing = json.loads(proc.stderr.strip().splitlines()[-1])
            best = min(best, timing["encode_s"])
            load = timing["load_s"] if load is None else min(load, timing["load_s"])
        return best, load


def hf_seconds(tok, docs, repeat):
    batch, loop = float("inf"), float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        tok.encode_batch(docs)
        batch = min(batch, time.perf_counter() - t)
        t = time.perf_counter()
        for d in docs:
            tok.encode(d)
        loop = min(loop, time.perf_counter() - t)
    return batch, loop


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=str(ROOT / "build" / "fp4llm"))
    ap.add_argument("--shared", default=os.environ.get("FP4LLM_SHARED_DIR",
                                                       str(ROOT.parent / "shared")))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()

    docs = build_corpus()
    mb = sum(len(d.encode()) for d in docs) / 1e6
    rows = []
    for name in ("qwen3", "gemma3"):
        model_dir = Path(args.shared) / "testdata" / "tokenizers" / name
        t = time.perf_counter()
        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        hf_load = time.perf_counter() - t
        ours, ours_load = fp4llm_encode_seconds(args.bin, model_dir, docs, args.repeat)
        batch, loop = hf_seconds(tok, docs, args.repeat)
        rows.append({"tokenizer": name, "corpus_mb": round(mb, 3),
                     "fp4llm_mb_s": round(mb / ours, 2),
                     "hf_encode_batch_1thread_mb_s": round(mb / batch, 2),
                     "hf_encode_loop_mb_s": round(mb / loop, 2),
                     "fp4llm_load_s": round(ours_load, 3), "hf_load_s": round(hf_load, 3)})

    print(f"corpus: {len(docs)} documents, {mb:.3f} MB; single thread; best of {args.repeat}")
    print(f"{'tokenizer':10} {'fp4llm MB/s':>12} {'HF batch MB/s':>14} {'HF loop MB/s':>13} "
          f"{'fp4llm load s':>14} {'HF load s':>10}")
    for r in rows:
        print(f"{r['tokenizer']:10} {r['fp4llm_mb_s']:12.2f} "
              f"{r['hf_encode_batch_1thread_mb_s']:14.2f} {r['hf_encode_loop_mb_s']:13.2f} "
              f"{r['fp4llm_load_s']:14.3f} {r['hf_load_s']:10.3f}")
    if args.out:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        result = {"command": " ".join([Path(sys.executable).name] + sys.argv),
                  "date": datetime.date.today().isoformat(), "commit": commit,
                  "machine": f"{platform.machine()} {os.cpu_count()} cores, "
                             f"{platform.processor() or platform.platform()}",
                  "tokenizers_version": tokenizers.__version__, "results": rows}
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
