#!/usr/bin/env bash
# On a GPU machine: build (as tools/gpu_check.sh does) and run `fp4llm bench` on synthetic models.
#   tools/gpu_bench.sh "qwen3-8b:1,16,64 gemma3-27b:1,16" [extra bench args]
# JSON results go to $OUT (the device tool's output folder) or build-gpu/logs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT"
source tools/gpu_env.sh
gpu_build fp4llm || exit 1
rc=0
for spec in $1; do
  model=${spec%%:*}; batches=${spec#*:}
  ./build-gpu/fp4llm bench --synthetic "$model" --batch "$batches" --quiet --json "$OUT/bench-$model.json" "${@:2}" || rc=1
done
exit $rc
