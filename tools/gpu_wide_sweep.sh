#!/usr/bin/env bash
# On a GPU machine: the decode kernels for 17-64 rows compared in one call. First the GEMV tests
# on the x-sharing kernel (FP4LLM_GEMV_KERNEL=tiled, ctest *_tiled), then for each variant the
# GEMV micro-benchmark's 64-row figure and end-to-end decode at 32 and 64 rows. Variants: the
# copy ring as it is, the ring with fewer K splits (FP4LLM_GEMV_MIN_CHUNKS_WIDE), the tiled kernel
# with its default and with 1, 2 and 4 in-block splits. Prints a table; logs under $OUT.
#   device: carry [".deps"]; about 7 minutes
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT" build-gpu/sweep
source tools/gpu_env.sh
nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/gemv_bench.cu -lcublas \
  -o build-gpu/sweep/gemv_default > "$OUT/gemv-build.log" 2>&1 &
gpu_build || exit 1
wait
(cd build-gpu && timeout 200 ctest -R "gpu_nvfp4_linear|gpu_moe" > "$OUT/tests.log" 2>&1)
echo "GEMV tests (default, ring, tiled): exit $? | $(grep -E 'tests passed|\*\*\*Failed' "$OUT/tests.log" | tr '\n' ';')"
echo "| variant | gemv 4 projections, 64 rows (us) | Qwen3-8B b32 / b64 tok/s | Gemma3-27B b64 tok/s |"
echo "|---|---|---|---|"
rates() { python3 -c "import json,sys; print(' / '.join(f\"{d['decode_tokens_per_s']:.0f}\" for d in json.load(open(sys.argv[1]))['decode']))" "$1" 2>/dev/null || echo failed; }
for v in "ring" "ring-wide32 FP4LLM_GEMV_MIN_CHUNKS_WIDE=32" "tiled FP4LLM_GEMV_KERNEL=tiled" \
         "tiled-s1 FP4LLM_GEMV_KERNEL=tiled FP4LLM_GEMV_TILED_SPLITS=1" \
         "tiled-s2 FP4LLM_GEMV_KERNEL=tiled FP4LLM_GEMV_TILED_SPLITS=2" \
         "tiled-s4 FP4LLM_GEMV_KERNEL=tiled FP4LLM_GEMV_TILED_SPLITS=4"; do
  set -- $v
  label=$1; shift
  gemv=$(env "$@" build-gpu/sweep/gemv_default 2>&1 | tee "$OUT/gemv-$label.md" | tail -1 | sed -E 's/.*rows 64 ([0-9.]+) us.*/\1/')
  for m in qwen3-8b:32,64 gemma3-27b:64; do
    env "$@" timeout 120 ./build-gpu/fp4llm bench --synthetic "${m%%:*}" --batch "${m#*:}" --quiet \
      --json "$OUT/bench-${m%%:*}-$label.json" > "$OUT/bench-${m%%:*}-$label.txt" 2>&1
  done
  echo "| $label | $gemv | $(rates "$OUT/bench-qwen3-8b-$label.json") | $(rates "$OUT/bench-gemma3-27b-$label.json") |"
done | tee "$OUT/wide.md"
