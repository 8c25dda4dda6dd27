#!/usr/bin/env python3
"""Load test of `fp4llm serve`: many concurrent streaming clients send requests of mixed prompt
and output lengths to /v1/completions and /v1/chat/completions; some hang up mid-stream. Checks
that every request completes or gets a clear OpenAI-style error, that no KV block leaks (from
/metrics once the server is idle) and that the server is still healthy; reports requests/s and
time-to-first-token and inter-token-latency percentiles as JSON.

    bench/serve_load_test.py --url http://127.0.0.1:8000 --model NAME [--clients 64 --requests 1000]

Standard library only (threads + http.client), so it runs anywhere Python does. Exit status 1
when a request failed without a clear error, a block leaked, or the server is unhealthy."""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request

WORDS = ("the of and to in is was for on that with as by at from his her an were are which this be or "
         "had not but first one their its new after who they have two been has more time during most "
         "apple river stone cloud music paper light orange window forest engine silver garden").split()


def percentiles(values, ps=(50, 90, 99)):
    if not values:
        return {f"p{p}": None for p in ps}
    s = sorted(values)
    return {f"p{p}": s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] for p in ps}


class Job:
    def __init__(self, i, rng, model, disconnect_fraction, max_words, max_output, sampled_fraction):
        """Prompts and outputs each short, medium or long with equal odds, up to the maxima."""
        self.i = i
        n_words = rng.choice([rng.randint(3, max_words // 20 + 3), rng.randint(3, max_words // 3 + 3),
                              rng.randint(3, max_words)])
        text = " ".join(rng.choice(WORDS) for _ in range(n_words))
        self.max_tokens = rng.choice([rng.randint(1, max_output // 10 + 1), rng.randint(1, max_output // 3 + 1),
                                      rng.randint(1, max_output)])
        self.chat = rng.random() < 0.5
        if self.chat:
            self.path = "/v1/chat/completions"
            self.body = {"model": model, "messages": [{"role": "user", "content": text}]}
        else:
            self.path = "/v1/completions"
            self.body = {"model": model, "prompt": text}
        temperature = 0.8 if rng.random() < sampled_fraction else 0
        self.body.update({"max_tokens": self.max_tokens, "stream": True, "temperature": temperature,
                          "seed": rng.randint(0, 1 << 30), "stream_options": {"include_usage": True}})
        # hang up after this many content events (None: read to the end)
        self.hang_up_after = rng.randint(1, 8) if rng.random() < disconnect_fraction else None


def run_job(job, host, port, headers, timeout):
    """Returns a result dict: outcome completed | disconnected | error | failed, timings."""
    t0 = time.perf_counter()
    res = {"outcome": "failed", "ttft": None, "itl": [], "tokens": 0}
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", job.path, body=json.dumps(job.body), headers=headers)
        r = conn.getresponse()
        if r.status != 200:
            body = json.loads(r.read() or b"{}")
            ok = isinstance(body.get("error"), dict) and body["error"].get("message")
            res.update(outcome="error" if ok else "failed", status=r.status, message=body)
            return res
        last = None
        events = 0
        finish = None
        while True:
            line = r.fp.readline()
            if not line:
                res["message"] = "stream ended without [DONE]"
                return res
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                res.update(outcome="error", message=event)
                return res
            if event.get("usage"):
                res["completion_tokens"] = event["usage"]["completion_tokens"]
            for ch in event.get("choices", []):
                piece = ch.get("text") if "text" in ch else (ch.get("delta") or {}).get("content")
                if piece:
                    now = time.perf_counter()
                    if last is None:
                        res["ttft"] = now - t0
                    else:
                        res["itl"].append(now - last)
                    last = now
                    events += 1
                finish = ch.get("finish_reason") or finish
            if job.hang_up_after is not None and events >= job.hang_up_after:
                conn.sock.close()
                res["outcome"] = "disconnected"
                return res
        if finish not in ("stop", "length"):
            res["message"] = f"finish_reason {finish!r}"
            return res
        if finish == "length" and res.get("completion_tokens") != job.max_tokens:
            res["message"] = f"length finish after {res.get('completion_tokens')} of {job.max_tokens} tokens"
            return res
        res["outcome"] = "completed"
        res["tokens"] = res.get("completion_tokens", 0)
        return res
    except Exception as e:  # noqa: BLE001 - a failure to report, not to hide
        res["message"] = f"{type(e).__name__}: {e}"
        return res
    finally:
        res["e2e"] = time.perf_counter() - t0
        conn.close()


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#") and "_bucket" not in line:
                key, value = line.rsplit(" ", 1)
                out[key.split("{")[0]] = out.get(key.split("{")[0], 0) + float(value)
        return out


def wait_idle(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = metrics(url)
        if m["fp4llm:num_requests_running"] == 0 and m["fp4llm:num_requests_waiting"] == 0:
            return m
        time.sleep(0.1)
    return metrics(url)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", required=True, help="the served model name")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--disconnect-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-prompt-words", type=int, default=600)
    ap.add_argument("--max-output-tokens", type=int, default=160)
    ap.add_argument("--sampled-fraction", type=float, default=0.5,
                    help="requests at temperature 0.8 (the others greedy)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", help="also write the report here")
    a = ap.parse_args(argv)

    u = urllib.parse.urlparse(a.url)
    headers = {"Content-Type": "application/json"}
    if a.api_key:
        headers["Authorization"] = f"Bearer {a.api_key}"
    rng = random.Random(a.seed)
    jobs = [Job(i, rng, a.model, a.disconnect_fraction, a.max_prompt_words, a.max_output_tokens, a.sampled_fraction)
            for i in range(a.requests)]
    results = [None] * len(jobs)
    next_job = iter(range(len(jobs)))
    lock = threading.Lock()

    def client():
        while True:
            with lock:
                i = next(next_job, None)
            if i is None:
                return
            results[i] = run_job(jobs[i], u.hostname, u.port, headers, a.timeout)

    before = metrics(a.url)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    after = wait_idle(a.url)
    with urllib.request.urlopen(a.url + "/health", timeout=30) as r:
        healthy = r.status == 200

    outcomes = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    done = [r for r in results if r["outcome"] == "completed"]
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv),
        "clients": a.clients, "requests": a.requests, "wall_s": round(wall, 3),
        "outcomes": outcomes,
        "requests_per_s": round(len(results) / wall, 2),
        "completed_output_tokens_per_s": round(sum(r["tokens"] for r in done) / wall, 1),
        "ttft_s": {k: v and round(v, 4) for k, v in percentiles([r["ttft"] for r in results if r["ttft"]]).items()},
        "itl_s": {k: v and round(v, 4) for k, v in percentiles([x for r in results for x in r["itl"]]).items()},
        "e2e_s": {k: v and round(v, 3) for k, v in percentiles([r["e2e"] for r in done]).items()},
        "server": {"kv_blocks_used_after": after["fp4llm:kv_cache_blocks_used"],
                   "preemptions": after["fp4llm:num_preemptions_total"] - before["fp4llm:num_preemptions_total"],
                   "prefix_cache_hit_tokens": after["fp4llm:prefix_cache_hits_total"] -
                   before["fp4llm:prefix_cache_hits_total"],
                   "healthy_after": healthy},
        "failures": [dict(job=i, **{k: v for k, v in r.items() if k not in ("itl",)})
                     for i, r in enumerate(results) if r["outcome"] == "failed"][:5],
    }
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    ok = outcomes.get("failed", 0) == 0 and after["fp4llm:kv_cache_blocks_used"] == 0 and healthy
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
