#!/usr/bin/env python3
"""Writes a random-weight BF16 Hugging Face checkpoint of a Qwen3 shape (config.json,
model.safetensors, and the real Qwen3 tokenizer files when ../shared has them), through the
independent `safetensors` package. Used by `make run` until a real model ships with the project."""
import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))
from helpers import qwen3_config, write_plain_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--tokenizer-dir", type=Path,
                    default=Path(__file__).resolve().parent.parent.parent / "shared/testdata/tokenizers/qwen3")
    a = ap.parse_args()
    cfg = qwen3_config(hidden=a.hidden, layers=a.layers, heads=16, kv_heads=8, head_dim=128,
                       inter=a.intermediate, vocab=a.vocab, tie=True)
    write_plain_model(a.out, cfg, seed=0)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (a.tokenizer_dir / f).exists():
            shutil.copy(a.tokenizer_dir / f, a.out / f)
    print(f"wrote a random BF16 Qwen3-shaped checkpoint to {a.out}")


if __name__ == "__main__":
    main()
