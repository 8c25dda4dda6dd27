#!/usr/bin/env bash
# On a GPU machine: the decode kernels for 17-64 rows compared in one call. First the GEMV tests
# on the x-sharing kernel (FP4LLM_GEMV_KERNEL=tiled, ctest *_tiled), then for each variant the
# GEMV micro-benchmark's 64-row figure and end-to-end decode at 32 and 64 rows. Variants: the
# copy ring as it is, the ring with fewer K splits (FP4LLM_GEMV_MIN_CHUNKS_WIDE), the tiled kernel
# with its default and with 1, 2 and 4 in-block splits. Prints a line per variant and model;
# logs under $OUT.
#   device: carry [".deps"]; about 7 minutes
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT" build-gpu/sweep
source tools/gpu_env.sh
nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/gemv_bench.cu -lcublas -lcublasLt \
  -o build-gpu/sweep/gemv_default > "$OUT/gemv-build.log" 2>&1 &
gpu_build || exit 1
wait
(cd build-gpu && timeout 200 ctest -R "gpu_nvfp4_linear|gpu_moe" > "$OUT/tests.log" 2>&1)
echo "GEMV tests (default, ring, tiled): exit $? | $(grep -E 'tests passed|\*\*\*Failed' "$OUT/tests.log" | tr '\n' ';')"
for v in "ring" "ring-wide32 FP4LLM_GEMV_MIN_CHUNKS_WIDE=32" "tiled FP4LLM_GEMV_KERNEL=tiled" \
         "tiled-s1 FP4LLM_GEMV_KERNEL=tiled FP4LLM_GEMV_TILED_SPLITS=1" \
         "tiled-s2 FP4LLM_GEMV_KERNEL=tiled FP4LLM_GEMV_TILED_SPLITS=2" \
         "tiled-s4 FP4LLM_GEMV_KERNEL=tiled FP4LLM_GEMV_TILED_SPLITS=4"; do
  set -- $v
  label=$1; shift
  echo "$label gemv, 4 projections at 64 rows: $(env "$@" build-gpu/sweep/gemv_default 2>&1 | tee "$OUT/gemv-$label.md" |
    tail -1 | sed -E 's/.*rows 64 ([0-9.]+) us.*/\1/') us"
  bench_variant "$OUT" "$label-qwen3-8b" qwen3-8b 32,64 "$@"
  bench_variant "$OUT" "$label-gemma3-27b" gemma3-27b 64 "$@"
done | tee "$OUT/wide.md"
