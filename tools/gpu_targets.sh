#!/usr/bin/env bash
# On a GPU machine, after tools/gpu_check.sh or tools/gpu_bench.sh built build-gpu/fp4llm: the
# issue-5 measurements beyond the decode/prefill table, each to $OUT as JSON, a summary last.
#   - memory: Qwen3-8B shape, 4k context, batch 1, chunked prefill, BF16 and NVFP4 lm_head, and
#     the BF16 head with the embedding table in host memory (--offload-embeddings)
#   - long context: decode at 32k with FP8 and BF16 KV caches, per-stage times (attention part)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT"
source tools/gpu_env.sh
bin=./build-gpu/fp4llm
run() {  # NAME ARGS...
  local name=$1; shift
  "$bin" bench --quiet --json "$OUT/$name.json" "$@" > "$OUT/$name.txt" 2>&1 || { echo "$name failed:"; tail -5 "$OUT/$name.txt"; }
}
run mem-bf16-head --synthetic qwen3-8b --batch 1 --input-len 4096 --output-len 16 --prefill-len 0 --max-num-batched-tokens 2048
run mem-nvfp4-head --synthetic qwen3-8b --batch 1 --input-len 4096 --output-len 16 --prefill-len 0 --max-num-batched-tokens 2048 --quantize-lm-head
run mem-offload --synthetic qwen3-8b --batch 1 --input-len 4096 --output-len 16 --prefill-len 0 --max-num-batched-tokens 2048 --offload-embeddings
run ctx32k-fp8 --synthetic qwen3-8b --batch 1 --input-len 32768 --output-len 16 --prefill-len 0 --max-num-batched-tokens 4096 --profile
run ctx32k-bf16 --synthetic qwen3-8b --batch 1 --input-len 32768 --output-len 16 --prefill-len 0 --max-num-batched-tokens 4096 --profile --kv-cache-dtype bf16
python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(n):
    p = out / f"{n}.json"
    return json.loads(p.read_text()) if p.exists() else None
print("| run | tok/s | ms/step | of floor | GPU used GB | allocator peak GB | attention us/step |")
print("|---|---|---|---|---|---|---|")
for n in ["mem-bf16-head", "mem-nvfp4-head", "mem-offload", "ctx32k-fp8", "ctx32k-bf16"]:
    r = load(n)
    if not r: print(f"| {n} | missing |"); continue
    d = r["decode"][0]; m = r["memory"]
    att = (d.get("profile_us_per_step") or {}).get("attention")
    print(f"| {n} | {d['decode_tokens_per_s']:.1f} | {d['decode_ms_per_step']:.3f} | {100*d['fraction_of_bandwidth_floor']:.1f}% | "
          f"{m['gpu_used_bytes']/1e9:.2f} | {m['allocator_peak_bytes']/1e9:.2f} | {att if att is None else round(att, 1)} |")
a, b = load("ctx32k-fp8"), load("ctx32k-bf16")
if a and b:
    fa = (a["decode"][0].get("profile_us_per_step") or {}).get("attention")
    fb = (b["decode"][0].get("profile_us_per_step") or {}).get("attention")
    if fa and fb: print(f"32k attention: FP8 / BF16 step cost = {fa / fb:.3f} (target <= 0.52)")
PY
