#!/usr/bin/env bash
# On a GPU machine: Nsight Compute over the kernels of one decode step (eager launches), with a
# compact per-kernel table (time, DRAM throughput, issue activity, occupancy, main stalls).
#   tools/gpu_profile.sh MODEL BATCH [LAUNCH_SKIP] [LAUNCH_COUNT]
# Skip/count apply to decode kernels only (the regex leaves out cuBLAS, dequantize and flash);
# the default skip lands in the third decode step of a 128-token prompt. PROFILE_KERNELS replaces
# the regex (e.g. 'nvfp4_gemv_wgmma': only the batch-64 products, which prefill never launches).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT"
model=$1 batch=$2 skip=${3:-1160} count=${4:-26}
source tools/gpu_env.sh
if [ ! -x build-gpu/fp4llm ] || [ "${FP4LLM_REBUILD:-1}" = 1 ]; then
  gpu_build fp4llm || exit 1
fi
stalls=""
for s in long_scoreboard short_scoreboard wait barrier math_pipe_throttle mio_throttle lg_throttle not_selected no_instruction; do
  stalls="$stalls,smsp__warp_issue_stalled_${s}_per_warp_active.pct"
done
ncu --clock-control none --cache-control none --csv --page raw \
  --kernel-name "regex:${PROFILE_KERNELS:-^(?!.*(gemm|nvjet|dequantize|flash|Kernel)).*\$}" --launch-skip "$skip" --launch-count "$count" \
  --metrics "gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,lts__t_bytes.sum,sm__inst_executed.sum,sm__inst_issued.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__grid_size,launch__block_size,smsp__average_warps_issue_stalled_per_issue_active.ratio${stalls}" \
  ./build-gpu/fp4llm bench --synthetic "$model" --batch "$batch" --input-len 128 --output-len 6 --enforce-eager --quiet \
  > "$OUT/ncu-$model-b$batch.csv" 2> "$OUT/ncu-$model-b$batch.log"
python3 tools/ncu_table.py "$OUT/ncu-$model-b$batch.csv"
