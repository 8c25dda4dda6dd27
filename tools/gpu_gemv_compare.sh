#!/usr/bin/env bash
# On a GPU machine: the register-pipelined decode GEMV (the default up to 16 rows) against the
# copy ring (FP4LLM_GEMV_KERNEL=ring) in one call: the GEMV micro-benchmark for compile-time
# variants of the direct kernel (chunks per group x blocks per SM, and the code layout before
# 8e5b580: "nibbles"), the GPU tests, and the
# end-to-end decode bench both ways. Prints a table last; logs under $OUT.
#   device: carry [".deps"]; about 6 minutes
#   tools/gpu_gemv_compare.sh ["G2B4 G2B3 G1B4 G3B3"]   (FP4LLM_PROFILE=1 adds tools/gpu_profile.sh qwen3-8b 1)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT" build-gpu/sweep
source tools/gpu_env.sh
variants=${1:-"G2B4 G2B3 G1B4 G3B3"}
build_variant() {  # NAME FLAGS...
  local name=$1; shift
  nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc "$@" tools/gemv_bench.cu -lcublas -lcublasLt \
    -o "build-gpu/sweep/gemv_$name" > "$OUT/gemv-build-$name.log" 2>&1
}
build_variant ring &
build_variant nibbles -DFP4LLM_E2M1_NIBBLES &  # the code layout before 8e5b580 (random weights: timing only)
for v in $variants; do
  g=${v#G}; g=${g%B*}; b=${v#*B}
  build_variant "$v" -DFP4LLM_GEMV_GROUP="$g" -DFP4LLM_GEMV_DIRECT_BLOCKS="$b" &
done
gpu_build || exit 1
wait
summary=$OUT/compare.txt
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
run_gemv() {  # NAME [env...]
  local name=$1; shift
  [ -x "build-gpu/sweep/gemv_$name" ] || { say "gemv $name: build failed"; return; }
  env "$@" "build-gpu/sweep/gemv_$name" > "$OUT/gemv-$name.md" 2>&1
  say "gemv $name: $(grep -E '^\| (qkv|o |gate|down)' "$OUT/gemv-$name.md" | awk -F'|' '$3+0==1 {printf "%s %s us; ", $2, $4}')$(tail -1 "$OUT/gemv-$name.md")"
}
run_gemv ring FP4LLM_GEMV_KERNEL=ring
run_gemv nibbles
for v in $variants; do run_gemv "$v"; done
(cd build-gpu && timeout 300 ctest -L gpu -LE gpu_knob > "$OUT/gpu-tests.log" 2>&1)
say "ctest -L gpu: exit $? | $(grep -E 'tests passed|Failed|\*\*\*' "$OUT/gpu-tests.log" | tr '\n' ';')"
say "$(bench_variant "$OUT" 8b-default qwen3-8b 1,16,64)"
say "$(bench_variant "$OUT" 8b-ring qwen3-8b 1,16 FP4LLM_GEMV_KERNEL=ring)"
say "$(bench_variant "$OUT" 30b-default qwen3-30b-a3b 1,16)"
say "$(bench_variant "$OUT" 30b-ring qwen3-30b-a3b 1,16 FP4LLM_GEMV_KERNEL=ring)"
say "$(bench_variant "$OUT" 27b-default gemma3-27b 1,16)"
if [ "${FP4LLM_PROFILE:-0}" = 1 ]; then
  FP4LLM_REBUILD=0 timeout 240 bash tools/gpu_profile.sh qwen3-8b 1 > "$OUT/ncu-table.md" 2>&1
  tail -30 "$OUT/ncu-table.md" | tee -a "$summary"
fi
