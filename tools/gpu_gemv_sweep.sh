#!/usr/bin/env bash
# On a GPU machine: the decode GEMV micro-benchmark (tools/gemv_bench.cu) for several shapes of
# the per-warp copy ring (stages x chunks per stage), compiled in parallel, run one by one.
#   tools/gpu_gemv_sweep.sh ["4x2 8x2 4x4 2x4 6x2"]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT" build-gpu/sweep
configs=${1:-"4x2 8x2 4x4 2x4 6x2"}
for cfg in $configs; do
  s=${cfg%x*} c=${cfg#*x}
  nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc -DFP4LLM_GEMV_STAGES="$s" -DFP4LLM_GEMV_STAGE_CHUNKS="$c" \
    tools/gemv_bench.cu -lcublas -lcublasLt -o "build-gpu/sweep/gemv_$cfg" > "build-gpu/sweep/build-$cfg.log" 2>&1 &
done
wait
for cfg in $configs; do
  if [ -x "build-gpu/sweep/gemv_$cfg" ]; then
    "build-gpu/sweep/gemv_$cfg" > "$OUT/sweep-$cfg.md" 2>&1
    echo "$cfg: $(tail -1 "$OUT/sweep-$cfg.md")"
  else
    echo "$cfg: build failed"; tail -5 "build-gpu/sweep/build-$cfg.log"
  fi
done
