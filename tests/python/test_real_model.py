"""The default real model (Gemma 3 270M, GGUF Q4_K_M, installed from the Python registry by
tools/setup.sh): requantized to NVFP4 with an FP8 KV cache it still answers a factual prompt."""
import os
import subprocess
from pathlib import Path

from helpers import run

ROOT = Path(__file__).resolve().parents[2]
# The real Gemma 3 tokenizer.json: the --tokenizer override (test_eval.py uses it).
TOKENIZER = Path(os.environ.get("FP4LLM_SHARED_DIR", ROOT.parent / "shared")) / "testdata/tokenizers/gemma3"


def model_path():
    out = subprocess.run(["bash", str(ROOT / "tools/default_model.sh")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_capital_of_france():
    # No --tokenizer: the tokenizer comes from the GGUF's metadata (tests/tokenizer checks it
    # against Hugging Face); this base model's GGUF has no chat template, so the prompt goes in
    # as plain text with a note. (--tokenizer DIR, the override, is exercised by test_eval.py.)
    p = run("run", model_path(), "The capital of France is", "--temperature", "0", "--max-tokens", "6")
    assert "Paris" in p.stdout, p.stdout
    assert "has no chat template" in p.stderr, p.stderr


def test_inspect_of_the_gguf():
    p = run("inspect", model_path())
    assert "Gemma3ForCausalLM" in p.stdout and "GGUF" in p.stdout


def test_prompt_longer_than_the_model_length_is_refused():
    p = run("run", model_path(), "one two three four five six seven eight nine ten", "--max-model-len", "8",
            "--max-tokens", "1", "--quiet", check=False)
    assert p.returncode == 1, p.stdout
    assert "the prompt has" in p.stderr and "--max-model-len) is 8" in p.stderr, p.stderr


def test_offloaded_embeddings_need_a_separate_lm_head():
    # Gemma 3's lm_head is its embedding table (tied): offloading it alone is refused with the fix
    # named; with --quantize-lm-head the head is its own NVFP4 copy and the table may move.
    p = run("run", model_path(), "Hello", "--offload-embeddings", "--max-tokens", "1", "--quiet", check=False)
    assert p.returncode == 1, p.stdout
    assert "tied word embeddings" in p.stderr and "--quantize-lm-head" in p.stderr, p.stderr
    p = run("run", model_path(), "The capital of France is", "--offload-embeddings", "--quantize-lm-head",
            "--temperature", "0", "--max-tokens", "3", "--quiet")
    assert p.stdout.strip(), p.stderr
