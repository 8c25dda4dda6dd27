import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def _require_env(name):
    value = os.environ.get(name)
    assert value, f"{name} is not set: run this test through ctest"
    return value


@pytest.fixture(scope="session")
def fp4llm_bin():
    path = _require_env("FP4LLM_BIN")
    assert os.path.exists(path), f"fp4llm binary {path} does not exist"
    return path


@pytest.fixture(scope="session")
def tokenizers_dir():
    shared = _require_env("FP4LLM_SHARED_DIR")
    path = os.path.join(shared, "testdata", "tokenizers")
    for family in ("qwen3", "gemma3"):
        config = os.path.join(path, family, "tokenizer_config.json")
        assert os.path.exists(config), (
            f"{config} is missing: the chat template tests need the shared test data "
            f"(FP4LLM_SHARED_DIR={shared})")
    return path


def run_batch(fp4llm_bin, cases, tmp_path):
    """Renders every case with one `fp4llm chat-template --batch` process."""
    batch = tmp_path / "batch.jsonl"
    with open(batch, "w", encoding="utf-8") as f:
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    proc = subprocess.run([fp4llm_bin, "chat-template", "--batch", str(batch)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    results = [json.loads(line) for line in proc.stdout.decode("utf-8").split("\n") if line]
    assert len(results) == len(cases)
    return results


def compare(label, reference, ours):
    """Reference is ("ok", text) or ("error", message); ours is {"output"} or {"error"}."""
    status, expected = reference
    if status == "ok":
        if "error" in ours:
            return f"{label}: jinja2 rendered {expected!r} but fp4llm failed: {ours['error']}"
        if ours["output"] != expected:
            return f"{label}:\n  jinja2: {expected!r}\n  fp4llm: {ours['output']!r}"
        return None
    if "error" not in ours:
        return f"{label}: jinja2 failed ({expected}) but fp4llm rendered {ours['output']!r}"
    return None
