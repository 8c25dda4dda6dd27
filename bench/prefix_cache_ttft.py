#!/usr/bin/env python3
"""Prefix caching, measured: time to first token of a request whose long prefix (about
--prefix-words words, ~1k tokens) is new, against a second request that shares the prefix and
differs only at the end. The second should find the prefix's full KV blocks in the cache and
prefill only its last block or two. Reports both TTFTs per trial and the server's cached-token
count, as JSON.

    bench/prefix_cache_ttft.py --url http://127.0.0.1:8000 --model NAME [--trials 5]
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import time
import urllib.parse

WORDS = ("time year people way day man thing woman life child world school state family student group "
         "country problem hand part place case week company system program question work government "
         "number night point home water room mother area money story fact month lot right study book").split()


def ttft(url, model, prompt, api_key):
    """(seconds to the first streamed token, prompt tokens, cached prompt tokens)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = {"model": model, "prompt": prompt, "max_tokens": 2, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body=json.dumps(body), headers=headers)
    r = conn.getresponse()
    assert r.status == 200, r.read()
    first, usage = None, None
    for line in r:
        if not line.startswith(b"data: {"):
            continue
        event = json.loads(line[6:])
        if first is None and event.get("choices"):
            first = time.perf_counter() - t0
        if event.get("usage"):
            usage = event["usage"]
    conn.close()
    return first, usage["prompt_tokens"], usage["prompt_tokens_details"]["cached_tokens"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", required=True)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--prefix-words", type=int, default=900)
    a = ap.parse_args(argv)
    rng = random.Random(0)
    trials = []
    for t in range(a.trials):
        prefix = f"Document {t} {rng.random()}: " + " ".join(rng.choice(WORDS) for _ in range(a.prefix_words))
        cold = ttft(a.url, a.model, prefix + "\nQuestion: what is the first word?", a.api_key)
        warm = ttft(a.url, a.model, prefix + "\nQuestion: what is the last word?", a.api_key)
        trials.append({"cold_ttft_s": round(cold[0], 4), "warm_ttft_s": round(warm[0], 4),
                       "prompt_tokens": warm[1], "warm_cached_tokens": warm[2]})
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv),
              "median_cold_ttft_s": statistics.median(t["cold_ttft_s"] for t in trials),
              "median_warm_ttft_s": statistics.median(t["warm_ttft_s"] for t in trials),
              "trials": trials}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
