#!/usr/bin/env bash
# On a machine with two or more GPUs (device kind nvidia-h200-x2): build, run the tensor-parallel
# GPU test (N = 2 against N = 1 on random Qwen3, Qwen3-MoE and Gemma3 models), then bench the
# Gemma3-27B and Qwen3-30B-A3B shapes at N = 1 and N = 2 (the MoE shape with experts split by
# columns and with --enable-expert-parallel) with per-stage times (the all_reduce share). Logs and JSON to $OUT.
# NVLink multicast stays off: on shared hosts it can take the GPUs out of service.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
source tools/gpu_env.sh
logs=/tmp/fp4llm-tp-logs
mkdir -p "$logs"
results=$OUT
OUT=$logs gpu_build fp4llm fp4llm_forward_dump || exit 1
OUT=$results
nvidia-smi --query-gpu=index,name --format=csv,noheader
(cd build-gpu && ctest -R py_gpu_forward -V > "$logs/py_gpu_forward.log" 2>&1)
echo "py_gpu_forward: exit $? ($(grep -E '[0-9]+ passed' "$logs/py_gpu_forward.log" | tail -1))"
grep -E "tensor-parallel top-1|FAILED|Error" "$logs/py_gpu_forward.log" | head -20
bench() {  # NAME ARGS...
  local name=$1; shift
  echo "== $name"
  ./build-gpu/fp4llm bench --batch 1,16 --profile --quiet --json "$OUT/bench-$name.json" "$@" 2>&1 | tail -8
}
for n in 1 2; do bench "gemma3-27b-tp$n" --synthetic gemma3-27b --tensor-parallel-size "$n"; done
bench qwen3-30b-a3b-tp1 --synthetic qwen3-30b-a3b
bench qwen3-30b-a3b-tp2 --synthetic qwen3-30b-a3b --tensor-parallel-size 2
bench qwen3-30b-a3b-tp2-ep --synthetic qwen3-30b-a3b --tensor-parallel-size 2 --enable-expert-parallel
tar czf "$OUT/tp-logs.tgz" -C /tmp fp4llm-tp-logs
