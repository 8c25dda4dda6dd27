#!/usr/bin/env bash
# On a GPU machine, after tools/gpu_profile.sh built fp4llm: Nsight Compute's per-instruction
# view (SASS with stall samples) of one decode-step kernel, to $OUT/sass-KERNEL.csv.
#   tools/gpu_sass_profile.sh KERNEL_REGEX MODEL BATCH [LAUNCH_SKIP]
# PROFILE_BENCH_ARGS replaces the bench's prompt and output lengths (default: 128 in, 6 out), e.g.
# the prefill kernel on one 2,048-token prompt: PROFILE_BENCH_ARGS="--input-len 2048 --output-len 5"
# tools/gpu_sass_profile.sh flash_pipelined qwen3-8b 1 10
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
source tools/gpu_env.sh
kernel=$1 model=$2 batch=$3 skip=${4:-100}
read -r -a lengths <<< "${PROFILE_BENCH_ARGS:---input-len 128 --output-len 6}"
ncu --clock-control none --set full --import-source no --kernel-name "regex:$kernel" --launch-skip "$skip" --launch-count 1 \
  -o "$OUT/ncu-$kernel" ./build-gpu/fp4llm bench --synthetic "$model" --batch "$batch" "${lengths[@]}" \
  --enforce-eager --quiet > "$OUT/ncu-$kernel.log" 2>&1
ncu -i "$OUT/ncu-$kernel.ncu-rep" --page source --csv --print-source sass > "$OUT/sass-$kernel.csv" 2>&1
# The launch's headline figures (time, throughputs, occupancy and what limits it, warp stalls).
ncu -i "$OUT/ncu-$kernel.ncu-rep" --page details > "$OUT/details-$kernel.txt" 2>&1
grep -E "^ +(Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|L2 Hit Rate|Registers Per Thread|Dynamic Shared Memory Per Block|Block Limit (Registers|Shared Mem|Warps)|Theoretical Occupancy|Achieved Occupancy|Issue Slots Busy|Executed Ipc Active|No Eligible|One or More Eligible|Warp Cycles Per Issued Instruction|Avg. Active Threads Per Warp) " \
  "$OUT/details-$kernel.txt" | sed -E 's/ +/ /g'
rm -f "$OUT/ncu-$kernel.ncu-rep"
python3 - "$OUT/sass-$kernel.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
if rows and rows[0] and rows[0][0] == "Kernel Name":  # newer ncu: the kernel's name comes first
    rows = rows[1:]
head = rows[0]
def col(name):
    for i, h in enumerate(head):
        if h.startswith(name): return i
    return None
src, samp = col("Source"), col("Warp Stall Sampling (All")
if samp is None: print(head); sys.exit()
data = [(float(r[samp] or 0), r[src]) for r in rows[1:] if len(r) > samp and r[samp].replace('.','',1).isdigit()]
total = sum(s for s, _ in data) or 1
print(f"{len(data)} SASS lines, {total:.0f} stall samples; hottest:")
for s, line in sorted(data, reverse=True)[:25]: print(f"{100*s/total:5.1f}%  {line[:110]}")
PY
