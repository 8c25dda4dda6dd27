"""Shared fixtures: the real tokenizer files and the fp4llm binary. Missing inputs FAIL (never
skip): a tokenizer test that silently does nothing would hide a broken checkout."""

import json
import os
import subprocess
from pathlib import Path

import pytest


def _require_env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"environment variable {name} is not set (run the test through ctest)")
    return value


@pytest.fixture(scope="session")
def fp4llm_bin():
    path = Path(_require_env("FP4LLM_BIN"))
    if not path.is_file():
        pytest.fail(f"fp4llm binary not found at {path}")
    return path


@pytest.fixture(scope="session")
def tokenizer_dirs():
    root = Path(_require_env("FP4LLM_SHARED_DIR")) / "testdata" / "tokenizers"
    dirs = {name: root / name for name in ("qwen3", "gemma3")}
    for name, d in dirs.items():
        if not (d / "tokenizer.json").is_file():
            pytest.fail(f"missing {d / 'tokenizer.json'}: the shared folder with the real "
                        f"tokenizer files is required (FP4LLM_SHARED_DIR={root.parent.parent})")
    return dirs


def run_jsonl(fp4llm_bin, model_dir, requests, workdir, extra_args=()):
    """One fp4llm process for a whole batch of requests; returns (results, timing dict)."""
    workdir = Path(workdir)
    inp, out = workdir / "requests.jsonl", workdir / "results.jsonl"
    with open(inp, "w", encoding="utf-8") as f:
        for r in requests:
            f.write(json.dumps(r) + "\n")
    proc = subprocess.run(
        [str(fp4llm_bin), "tokenize", str(model_dir), "--jsonl", str(inp), "--output", str(out),
         "--timing", *extra_args],
        capture_output=True, text=True)
    assert proc.returncode == 0, f"fp4llm tokenize failed: {proc.stderr}"
    with open(out, encoding="utf-8") as f:
        results = [json.loads(line) for line in f]
    assert len(results) == len(requests)
    timing = json.loads(proc.stderr.strip().splitlines()[-1])
    return results, timing
