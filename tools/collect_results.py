#!/usr/bin/env python3
"""Gathers the `fp4llm bench --json` files of a session's device calls into one results file
for bench/results/: per run its model, knobs, date, copy bandwidth, decode tok/s and fraction of
the floor per batch, prefill and memory, grouped by call.

  tools/collect_results.py --session S --tree T --command C --out F "CALL DESCRIPTION=DIR" ...

DIR is a folder the device call's files were unpacked into (its *.json files, any depth)."""
import argparse
import json
import pathlib


def summary(run: dict) -> dict:
    out = {
        "model": run.get("model"),
        "knobs": run.get("knobs", {}),
        "date": run.get("date"),
        "commit_reported": run.get("commit"),
        "gpu": run.get("gpu"),
        "copy_gb_per_s": round(run.get("copy_bandwidth_gb_per_s", 0)),
        "kv_cache_dtype": run.get("kv_cache_dtype"),
        "input_len": run.get("input_len"),
        "decode": [
            {
                "batch": d["batch"],
                "tokens_per_s": round(d["decode_tokens_per_s"], 1),
                "fraction_of_floor": round(d["fraction_of_bandwidth_floor"], 4),
                **({"profile_us_per_step": d["profile_us_per_step"]} if d.get("profile_us_per_step") else {}),
            }
            for d in run.get("decode", [])
        ],
    }
    prefill = run.get("prefill") or {}
    if prefill:
        out["prefill"] = {k: prefill[k] for k in ("tokens", "ms", "linear_tflops", "tflops_with_attention") if k in prefill}
        if prefill.get("profile_us"):
            out["prefill"]["profile_us"] = prefill["profile_us"]
    memory = run.get("memory") or {}
    if memory:
        out["memory_gb"] = {k.replace("_bytes", ""): round(v / 1e9, 2) for k, v in memory.items() if k.endswith("_bytes")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--session", required=True)
    ap.add_argument("--tree", required=True, help="the tree the calls ran (the JSON's commit field may be stale)")
    ap.add_argument("--command", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("calls", nargs="+", help="DESCRIPTION=DIR")
    args = ap.parse_args()
    calls = []
    for item in args.calls:
        description, _, folder = item.rpartition("=")
        runs = {}
        for path in sorted(pathlib.Path(folder).rglob("*.json")):
            try:
                run = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(run, dict) and ("decode" in run or "prefill" in run):
                runs[path.stem] = summary(run)
        calls.append({"call": description, "runs": runs})
    result = {"session": args.session, "tree": args.tree, "command": args.command, "calls": calls}
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.out}: {sum(len(c['runs']) for c in calls)} runs in {len(calls)} calls")


if __name__ == "__main__":
    main()
