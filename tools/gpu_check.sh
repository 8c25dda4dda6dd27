#!/usr/bin/env bash
# One run on a GPU machine: build with CUDA (sm_90a + sm_89), run the GPU tests and the C++ CPU
# tests, run compute-sanitizer memcheck and racecheck on the GPU test binaries, print a table.
# Logs go to $OUT (the device tool's output folder) or build-gpu/logs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT"

source tools/gpu_env.sh

{
  date -u +"date %Y-%m-%dT%H:%M:%SZ"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -1
} | tee "$OUT/environment.txt"

start=$(date +%s)
gpu_build || exit 1
build_s=$(( $(date +%s) - start ))

ctest --test-dir build-gpu -L gpu --output-on-failure -V > "$OUT/gpu-tests.log" 2>&1
gpu_rc=$?
ctest --test-dir build-gpu -L cpu -R '^unit_' --output-on-failure > "$OUT/cpu-unit-tests.log" 2>&1
cpu_rc=$?

san_rc=0
for t in build-gpu/gpu_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$t" --gtest_brief=1 \
      > "$OUT/sanitizer-$tool-$name.log" 2>&1 || san_rc=1
  done
done

hf_rc=0
if [ "${FP4LLM_HF_COMPARE:-0}" = 1 ]; then
  python3 tools/hf_compare.py --build build-gpu --json "$OUT/hf_compare.json" > "$OUT/hf_compare.md" 2> "$OUT/hf_compare.log"
  hf_rc=$?
fi

echo
echo "| step | result |"
echo "|---|---|"
echo "| build (s) | $build_s |"
echo "| gpu tests | $([ $gpu_rc = 0 ] && echo pass || echo FAIL) ($(grep -c '\[       OK \]' "$OUT/gpu-tests.log") ok, $(grep -c '\[  SKIPPED \]' "$OUT/gpu-tests.log") skipped lines) |"
echo "| cpu unit tests | $([ $cpu_rc = 0 ] && echo pass || echo FAIL) |"
echo "| compute-sanitizer memcheck+racecheck | $([ $san_rc = 0 ] && echo clean || echo ERRORS) |"
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT"/sanitizer-*.log | sort | uniq -c
# Where any hazard is, by kernel (cuBLAS's own nvjet kernels have shown some).
for f in "$OUT"/sanitizer-racecheck-*.log; do
  kernels=$(grep -oE "access at [A-Za-z_][A-Za-z0-9_:<>, ]*\+0x" "$f" | sed 's/^access at //; s/+0x$//' | sort | uniq -c | sort -rn | head -5)
  [ -n "$kernels" ] && { echo "racecheck hazards in $(basename "$f"):"; echo "$kernels"; }
done
if [ "${FP4LLM_HF_COMPARE:-0}" = 1 ]; then
  echo; echo "transformers comparison (tools/hf_compare.py): exit $hf_rc"
  cat "$OUT/hf_compare.md"; [ $hf_rc = 0 ] || tail -30 "$OUT/hf_compare.log"
fi
[ $gpu_rc = 0 ] || tail -40 "$OUT/gpu-tests.log"
exit $(( gpu_rc | cpu_rc | san_rc | hf_rc ))
