"""Gemma 3's sliding-window layers in their own pool (the default): each sequence keeps only the
blocks its window sees and gives older ones back, so the cache holds several times more context.
The reference is the same server with --disable-hybrid-kv-cache-manager, where those layers keep
every position: greedy outputs must be the same token for token, with chunked prefill, several
sequences at once, and prefix-cache hits (which need the window blocks of the prefix's end)."""
import concurrent.futures
import os
import re
import subprocess

import numpy as np
import pytest

from conftest import MODEL_NAME, Server, fp4llm_bin
from tiny_model import write_tiny_gemma3

WINDOW = 24


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory):
    return write_tiny_gemma3(tmp_path_factory.mktemp("tiny_gemma3"), sliding_window=WINDOW)


def prompts():
    rng = np.random.default_rng(11)
    return [[int(t) for t in rng.integers(100, 150000, n)] for n in (150, 211, 97, 300)]


def complete_all(server, items, max_tokens=30):
    c = server.client()
    def one(p):
        r = c.completions.create(model=MODEL_NAME, prompt=p, max_tokens=max_tokens, temperature=0)
        return r.choices[0].text, r.usage.prompt_tokens_details.cached_tokens if r.usage.prompt_tokens_details else 0
    with concurrent.futures.ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_window_pool_gives_the_outputs_of_full_length_caches(gemma_dir):
    # --max-num-seqs 4: a window pool of 19 blocks, so freed blocks are soon taken again.
    args = ["--max-num-batched-tokens", 48, "--max-num-seqs", 4, "--max-model-len", 1024, "--kv-cache-memory", "4MiB"]
    ring = Server(gemma_dir, *args)
    try:
        assert any(f"keep only their {WINDOW}-token window" in line for line in ring.log), "".join(ring.log)
        got = complete_all(ring, prompts())
        # Each prompt twice more, alone: the first run leaves its last window cached, the second
        # reuses the prompt's full blocks (150 tokens: 144; 211: 208) and their window.
        hits = [complete_all(ring, [p], max_tokens=1) + complete_all(ring, [p], max_tokens=1)
                for p in prompts()[:2]]
        m = ring.wait_idle()
    finally:
        ring.stop()
    full = Server(gemma_dir, *args, "--disable-hybrid-kv-cache-manager")
    try:
        assert any("keep K/V for every position (--disable-hybrid-kv-cache-manager)" in line for line in full.log)
        want = complete_all(full, prompts())
    finally:
        full.stop()
    assert [t for t, _ in got] == [t for t, _ in want]
    assert all(t for t, _ in want)
    assert [h[1][1] for h in hits] == [144, 208]  # (the first may hit too: what is left of `got`)
    assert all(h[0][0] == h[1][0] for h in hits)
    assert m["fp4llm:kv_cache_window_blocks_total"] > 0
    assert m["fp4llm:kv_cache_window_blocks_used"] == 0


def run_turns(gemma_dir, turns, *args):
    """`fp4llm run` with one line of stdin per turn (no chat template): the replies, and the
    cached prompt tokens of each turn."""
    device = ["--device", os.environ["FP4LLM_TEST_DEVICE"]] if os.environ.get("FP4LLM_TEST_DEVICE") else []
    p = subprocess.run([fp4llm_bin(), "run", str(gemma_dir), "--no-chat", "--temperature", "0", "--max-tokens", "20",
                        "--ignore-eos", *device, *map(str, args)],
                       input="\n".join(turns) + "\n", capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    replies = [line.removeprefix("> ") for line in p.stdout.split("\n") if line.startswith("> ") and line != "> "]
    cached = [int(c) for c in re.findall(r"prompt tokens \((\d+) cached\)", p.stderr)]
    return replies, cached, p.stderr


def test_run_keeps_the_window_in_a_ring(gemma_dir):
    """`fp4llm run` keeps the sliding layers' K/V in a ring of window + one prefill chunk (here
    32 tokens: ceil((23 + 32) / 16) + 1 = 5 blocks): the replies of three turns equal those of
    full-length caches; a turn whose common prefix with the last one still has its window in the
    ring reuses it, one whose window was overwritten is computed from the start."""
    rng = np.random.default_rng(5)
    words = ["river", "stone", "light", "garden", "window", "paper", "cloud", "market", "silver", "north"]
    text = " ".join(words[int(i)] for i in rng.integers(0, len(words), 120))
    turns = [text, text + " and then the evening came", " ".join(text.split()[:40]) + " but not today"]
    ring = run_turns(gemma_dir, turns, "--max-num-batched-tokens", 32)
    full = run_turns(gemma_dir, turns, "--disable-hybrid-kv-cache-manager")
    print("cached, ring:", ring[1], "full:", full[1])
    assert "sliding-window layers: a ring of 80 tokens" in ring[2], ring[2]
    assert len(ring[0]) == 3 and ring[0] == full[0]
    # Turn 2 extends turn 1: both reuse nearly all of it. Turn 3 shares 40 words with turn 2:
    # its window in the ring was overwritten by turn 2's later positions, so the ring reuses none.
    assert ring[1][0] == full[1][0] == 0
    assert ring[1][1] == full[1][1] > 100
    assert full[1][2] > 30 and ring[1][2] == 0
