"""Fixtures of the serving tests: the tiny random Qwen3 model with the real Qwen3 tokenizer, and
`fp4llm serve` processes started on a free port. Missing inputs FAIL, never skip."""
import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_model import qwen3_tokenizer_dir, write_tiny_qwen3  # noqa: E402

MODEL_NAME = "tiny-qwen3"
API_KEY = "test-key-123"
MAX_MODEL_LEN = 1024


def fp4llm_bin():
    b = os.environ.get("FP4LLM_BIN")
    if not b or not Path(b).is_file():
        pytest.fail(f"FP4LLM_BIN is not set or missing ({b!r}); run through ctest")
    return b


class Server:
    """One `fp4llm serve` process; stderr is kept for assertions and failures."""

    def __init__(self, model_dir, *args):
        # FP4LLM_TEST_DEVICE=cuda runs every serving test against the CUDA backend.
        device = ["--device", os.environ["FP4LLM_TEST_DEVICE"]] if os.environ.get("FP4LLM_TEST_DEVICE") else []
        self.proc = subprocess.Popen([fp4llm_bin(), "serve", str(model_dir), "--port", "0", "--quiet",
                                      "--served-model-name", MODEL_NAME, *device, *map(str, args)],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.log = []
        self.port = None
        deadline = time.time() + 60
        for line in self.proc.stderr:
            self.log.append(line)
            m = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
            if time.time() > deadline:
                break
        if self.port is None:
            self.proc.kill()
            pytest.fail("fp4llm serve did not start:\n" + "".join(self.log) + self.proc.stderr.read())
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.clients = []

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def stop(self):
        """SIGTERM, like a service manager: the server must stop cleanly. Clients close their
        kept-alive connections first, or the server waits out their keep-alive timeout."""
        for c in self.clients:
            c.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("fp4llm serve did not stop on SIGTERM")
        assert rc == 0, f"fp4llm serve exited with {rc}:\n" + "".join(self.log[-30:])

    def client(self, api_key=API_KEY, **kw):
        import openai
        c = openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, timeout=120, **kw)
        self.clients.append(c)
        return c

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return r.status, r.read().decode()

    def metrics(self):
        """Prometheus text -> {name or name{labels}: value}, model label dropped."""
        _, text = self.get("/metrics")
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, value = line.rsplit(" ", 1)
            key = re.sub(r'model_name="[^"]*",?', "", key).replace("{}", "")
            out[key] = float(value)
        return out

    def wait_idle(self, timeout=20):
        """Waits until nothing runs or waits; returns the metrics."""
        deadline = time.time() + timeout
        while True:
            m = self.metrics()
            if m["fp4llm:num_requests_running"] == 0 and m["fp4llm:num_requests_waiting"] == 0:
                return m
            if time.time() > deadline:
                raise AssertionError(f"server still busy after {timeout} s: {m}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return write_tiny_qwen3(tmp_path_factory.mktemp("tiny_qwen3"))


@pytest.fixture(scope="session")
def tokenizer_dir():
    return qwen3_tokenizer_dir()


@pytest.fixture(scope="module")
def server(model_dir):
    s = Server(model_dir, "--api-key", API_KEY, "--max-model-len", MAX_MODEL_LEN, "--kv-cache-memory", "8MiB",
               "--max-num-batched-tokens", 256, "--max-request-body", "1MiB")
    yield s
    s.stop()


@functools.lru_cache(maxsize=None)
def python_tokenizer(tokenizer_dir):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))


def render_prompt_tokens(tokenizer_dir, messages, add_generation_prompt=True, **kwargs):
    """The prompt's token count from independent tools: jinja2 (transformers' rendering rules,
    tests/template/reference_render.py) and the Python `tokenizers` package."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "template"))
    from reference_render import render_chat
    status, text = render_chat(str(tokenizer_dir), messages, add_generation_prompt=add_generation_prompt,
                               kwargs=kwargs)
    assert status == "ok", text
    return text, python_tokenizer(str(tokenizer_dir)).encode(text, add_special_tokens=False).ids


def encode(tokenizer_dir, text):
    return python_tokenizer(str(tokenizer_dir)).encode(text).ids
