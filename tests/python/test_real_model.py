"""The default real model (Gemma 3 270M, GGUF Q4_K_M, installed from the Python registry by
tools/setup.sh): requantized to NVFP4 with an FP8 KV cache it still answers a factual prompt."""
import os
import subprocess
from pathlib import Path

from helpers import run

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = Path(os.environ.get("FP4LLM_SHARED_DIR", ROOT.parent / "shared")) / "testdata/tokenizers/gemma3"


def model_path():
    out = subprocess.run(["bash", str(ROOT / "tools/default_model.sh")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_capital_of_france():
    assert (TOKENIZER / "tokenizer.json").exists(), f"missing {TOKENIZER}"
    p = run("run", model_path(), "The capital of France is", "--tokenizer", TOKENIZER, "--no-chat",
            "--temperature", "0", "--max-tokens", "6", "--quiet")
    assert "Paris" in p.stdout, p.stdout


def test_inspect_of_the_gguf():
    p = run("inspect", model_path())
    assert "Gemma3ForCausalLM" in p.stdout and "GGUF" in p.stdout
