"""Tensor parallelism on the CPU (issue 8): `--tensor-parallel-size N` on CPU ranks against the
unsplit CPU backend, on the small random models of test_cpu_forward.py (whose CPU logits are
checked against a float64 numpy forward pass there). The ranks run the partition the GPUs run
(model/tensor_parallel.cpp: query heads, KV heads split or replicated, MLP columns, every
expert's columns or whole experts, vocabulary slices) and join where NCCL joins the GPUs, so a
wrong shard, a misplaced sum or gather, or a replicated KV head paired with the wrong query heads
shows here as wrong logits. Only the order of the row-parallel sums differs from one rank."""
import subprocess

import numpy as np
import pytest

from helpers import TOOLS, run
from test_cpu_forward import PROMPTS, config, forward_dump, write_model

# Intermediate 128 splits into whole 16-value blocks over 2 and 4 ranks (test_cpu_forward's 96
# does not over 4); the experts' 32 columns split over 2 ranks, whole experts over 2 and 4.
# 4 query heads and 2 KV heads: over 4 ranks each KV head is replicated on two.
CASES = [("qwen3", 2, False), ("qwen3", 4, False), ("gemma3", 2, False), ("gemma3", 4, False),
         ("qwen3_moe", 2, False), ("qwen3_moe", 2, True), ("qwen3_moe", 4, True)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """family -> quantized model folder, written on first use."""
    made = {}

    def get(family):
        if family not in made:
            tmp = tmp_path_factory.mktemp("tp-" + family)
            write_model(tmp / "bf16", dict(config(family), intermediate_size=128), seed=11)
            run("quantize", tmp / "bf16", tmp / "nvfp4", "--quiet")
            made[family] = tmp / "nvfp4"
        return made[family]
    return get


def compare(one, many):
    """(top-1 agreement, positions, largest row error relative to the row's largest logit)."""
    agree = total = 0
    worst = 0.0
    for a, b in zip(one, many):
        assert np.isfinite(b).all()
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        total += len(a)
        worst = max(worst, float((np.abs(a - b).max(-1) / np.abs(a).max(-1)).max()))
    return agree, total, worst


@pytest.mark.parametrize("family,ranks,expert_parallel", CASES)
@pytest.mark.parametrize("kv", ["bf16", "fp8"])
def test_ranks_compute_the_unsplit_model(models, family, ranks, expert_parallel, kv, tmp_path):
    folder = models(family)
    prompts = [[int(t) for t in p] for p in PROMPTS]
    # float32 activations into the products on both sides: with the default BF16 rounding, sums
    # over ranks in another order put a few values on the other side of a BF16 boundary, noise of
    # the size of the errors this test must catch.
    options = ["cpu", f"tp={ranks}", "float32-products"] + (["expert-parallel"] if expert_parallel else [])
    for chunk in (0, 5, -2):  # whole prompts, chunks through the cache, lockstep batched decode
        one = forward_dump(folder, prompts, kv, chunk, tmp_path / "one.safetensors", "cpu", "float32-products")
        many = forward_dump(folder, prompts, kv, chunk, tmp_path / "many.safetensors", *options)
        agree, total, worst = compare(one, many)
        print(f"{family} tp={ranks} expert_parallel={expert_parallel} kv={kv} chunk={chunk}: "
              f"top-1 {agree}/{total}, max row error {worst:.1e}")
        # Float32 sums in another order move logits by ~1e-6 of the row's largest; a cache value at
        # a rounding boundary may round one BF16 or E4M3 step the other way (measured: at most
        # 4e-5); a partition error (a head's K paired with another head's Q, a missing share)
        # moves them by more than 1e-1.
        assert worst < (1e-3 if kv == "bf16" else 2e-2), (family, ranks, kv, chunk, worst)
        assert agree == total, (family, ranks, kv, chunk, agree, total)


@pytest.mark.parametrize("chunk", [5, -2])
def test_window_pool_on_ranks(models, chunk, tmp_path):
    """Gemma3's sliding layers in the window pool on each of 2 ranks: the same logits, bit for
    bit, as the ranks with full-length caches."""
    folder = models("gemma3")
    prompts = [[int(t) for t in p] for p in PROMPTS]
    full = forward_dump(folder, prompts, "fp8", chunk, tmp_path / "full.safetensors", "cpu", "tp=2")
    ring = forward_dump(folder, prompts, "fp8", chunk, tmp_path / "ring.safetensors", "cpu", "tp=2", "window-pool")
    for a, b in zip(full, ring):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("family", ["qwen3", "qwen3_moe", "gemma3"])
def test_sharded_nvfp4_lm_head(models, family, tmp_path):
    """--quantize-lm-head: the NVFP4 lm_head split by vocabulary rows over 2 ranks."""
    name, folder = family, models(family)
    prompts = [[int(t) for t in p] for p in PROMPTS]
    one = forward_dump(folder, prompts, "bf16", 0, tmp_path / "one.safetensors", "cpu", "nvfp4-head",
                       "float32-products")
    two = forward_dump(folder, prompts, "bf16", 0, tmp_path / "two.safetensors", "cpu", "nvfp4-head", "tp=2",
                       "float32-products")
    agree, total, worst = compare(one, two)
    assert worst < 1e-3 and agree == total, (name, worst, agree, total)


def failing_dump(folder, prompts, ranks, tmp_path):
    """forward_dump on CPU ranks where it must fail: the finished process."""
    (tmp_path / "p.json").write_text(prompts)
    return subprocess.run([str(TOOLS / "fp4llm_forward_dump"), str(folder), str(tmp_path / "p.json"),
                           str(tmp_path / "o.safetensors"), "bf16", "0", "cpu", f"tp={ranks}"],
                          capture_output=True, text=True, timeout=60)


def test_what_does_not_divide_is_refused_by_name(models, tmp_path):
    p = failing_dump(models("qwen3"), "[[1, 2]]", 3, tmp_path)
    assert p.returncode == 1
    assert "--tensor-parallel-size 3: the model's 4 attention heads do not divide evenly" in p.stderr, p.stderr


def test_a_bad_batch_fails_on_every_rank_without_hanging(models, tmp_path):
    """A token outside the vocabulary: every rank refuses the step; the error names the token
    (not "another rank failed") and the process ends."""
    p = failing_dump(models("qwen3"), "[[1, 2, 999999]]", 2, tmp_path)
    assert p.returncode == 1
    assert "999999" in p.stderr and "another tensor-parallel rank" not in p.stderr, p.stderr
