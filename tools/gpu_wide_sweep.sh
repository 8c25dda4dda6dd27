#!/usr/bin/env bash
# On a GPU machine: decode at 32 and 64 rows for several FP4LLM_GEMV_MIN_CHUNKS_WIDE values (fewer
# K splits per tile above 16 rows, so a block's warps share x through L1; nvfp4_linear.cu), with
# the GEMV micro-benchmark's 64-row figures for the same values. Prints a table; logs under $OUT.
#   device: carry [".deps"]; about 4 minutes.   tools/gpu_wide_sweep.sh ["8 16 32 64"]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT" build-gpu/sweep
source tools/gpu_env.sh
nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/gemv_bench.cu -lcublas \
  -o build-gpu/sweep/gemv_default > "$OUT/gemv-build.log" 2>&1 &
gpu_build fp4llm || exit 1
wait
echo "| min chunks (wide) | gemv 4 projections, 64 rows (us) | Qwen3-8B b32 / b64 tok/s | Gemma3-27B b64 tok/s |" | tee "$OUT/wide.md"
echo "|---|---|---|---|" | tee -a "$OUT/wide.md"
for c in ${1:-8 16 32 64}; do
  export FP4LLM_GEMV_MIN_CHUNKS_WIDE=$c
  gemv=$(build-gpu/sweep/gemv_default 2>&1 | tee "$OUT/gemv-$c.md" | tail -1 | sed -E 's/.*rows 64 ([0-9.]+) us.*/\1/')
  for m in qwen3-8b:32,64 gemma3-27b:64; do
    timeout 120 ./build-gpu/fp4llm bench --synthetic "${m%%:*}" --batch "${m#*:}" --quiet --json "$OUT/bench-${m%%:*}-$c.json" \
      > "$OUT/bench-${m%%:*}-$c.txt" 2>&1
  done
  rates() { python3 -c "import json,sys; print(' / '.join(f\"{d['decode_tokens_per_s']:.0f}\" for d in json.load(open(sys.argv[1]))['decode']))" "$1" 2>/dev/null || echo failed; }
  echo "| $c | $gemv | $(rates "$OUT/bench-qwen3-8b-$c.json") | $(rates "$OUT/bench-gemma3-27b-$c.json") |" | tee -a "$OUT/wide.md"
done
