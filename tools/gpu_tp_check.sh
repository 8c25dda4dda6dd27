#!/usr/bin/env bash
# On a machine with two or more GPUs (device kind nvidia-h100-x2): build, run the tensor-parallel
# GPU test (N = 2 against N = 1 on random Qwen3, Qwen3-MoE and Gemma3 models), then bench the
# Gemma3-27B and Qwen3-30B-A3B shapes at N = 1 and N = 2 with per-stage times (the all_reduce
# share). Logs and JSON to $OUT.
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
export FP4LLM_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
(cd build-gpu && ctest -R py_gpu_forward --output-on-failure > "$logs/py_gpu_forward.log" 2>&1)
echo "py_gpu_forward: exit $? ($(grep -cE 'PASSED|passed' "$logs/py_gpu_forward.log") pass lines)"
grep -E "tensor_parallel|FAILED|Error" "$logs/py_gpu_forward.log" | head -20
for model in gemma3-27b qwen3-30b-a3b; do
  for n in 1 2; do
    ./build-gpu/fp4llm bench --synthetic "$model" --batch 1,16 --tensor-parallel-size "$n" --profile --quiet \
      --json "$OUT/bench-$model-tp$n.json" 2>&1 | tail -8
  done
done
tar czf "$OUT/tp-logs.tgz" -C /tmp fp4llm-tp-logs
