"""The load test of bench/serve_load_test.py at CI scale: 16 concurrent streaming clients, 60
requests of mixed lengths, some hanging up mid-stream, against a KV cache small enough to
preempt. Every request must complete or end in a clear error, no KV block may leak, and the
server must stay healthy (the script checks all three and exits 1 otherwise)."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import API_KEY, MODEL_NAME, Server
from tiny_model import kv_cache_bytes

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "serve_load_test.py"


def test_load_small_scale(model_dir, tmp_path):
    s = Server(model_dir, "--api-key", API_KEY, "--kv-cache-memory", str(kv_cache_bytes(64 * 1024)), "--max-model-len", 1024,
               "--max-num-batched-tokens", 512)
    try:
        p = subprocess.run([sys.executable, str(SCRIPT), "--url", s.url, "--model", MODEL_NAME, "--api-key", API_KEY,
                            "--clients", "16", "--requests", "60", "--disconnect-fraction", "0.15",
                            "--max-prompt-words", "300", "--max-output-tokens", "32", "--sampled-fraction", "0.25",
                            "--json", str(tmp_path / "report.json")],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        report = json.loads((tmp_path / "report.json").read_text())
        assert sum(report["outcomes"].values()) == 60
        assert report["outcomes"].get("completed", 0) >= 40
        assert report["outcomes"].get("disconnected", 0) >= 1
        assert report["server"]["kv_blocks_used_after"] == 0 and report["server"]["healthy_after"]
        assert report["ttft_s"]["p50"] is not None and report["itl_s"]["p50"] is not None
        print(json.dumps(report, indent=1))
    finally:
        s.stop()
