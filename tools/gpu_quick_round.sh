#!/usr/bin/env bash
# One device call for a fresh machine when time is short: build, every GPU ctest entry (the
# default path and the knob variants, four at a time), then same-call A/B benches given as
# arguments, LABEL:MODEL:BATCHES[:VAR=VALUE,...] each, e.g. qwen3-8b-ring:qwen3-8b:1,16:FP4LLM_GEMV_KERNEL=ring.
# Prints a short summary; logs under $OUT (ctest.log and the bench JSON in quick.tgz).
#   device: carry [".deps"] (and ".whl/gpu", ".gpu-shared" for the serving suite on CUDA); about
#   2 minutes of build, 30 s of serving tests, 30-40 s per bench; the tests stop after
#   QUICK_CTEST_SECONDS (330 by default), which since the knob variants grew covers a part of them
#   only (2026-12-07: 28 of 126 entries, py_gpu_forward and its variants take 20-160 s each)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT"
work=/tmp/fp4llm-quick
rm -rf "$work" && mkdir -p "$work"
source tools/gpu_env.sh
start=$(date +%s)
echo "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(date -u +%FT%TZ)"
OUT=$work gpu_build || { echo "build FAILED"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
(cd build-gpu && timeout "${QUICK_CTEST_SECONDS:-330}" ctest -L gpu -j4 --output-on-failure > "$work/ctest.log" 2>&1)
echo "ctest -L gpu -j4: exit $? | $(grep -cE 'Test +#[0-9]+: .*Passed' "$work/ctest.log") passed;" \
  "$(grep -E 'Test +#[0-9]+: ' "$work/ctest.log" | grep -v Passed | sed -E 's/ +Test +#[0-9]+: / /; s/ \.+ */ /' | tr '\n' ';')"
grep -hE "largest error of the FP8 GEMM|[0-9]+ passed|[0-9]+ failed" "$work/ctest.log" | sed 's/^[0-9]*: //' | sort -u
if [ -d .whl/gpu ] && [ -d .gpu-shared ]; then  # the serving suite on the CUDA backend (tools/gpu_carry.sh)
  python3 -m pip install --no-index --find-links .whl/gpu openai -t /tmp/fp4llm-pylib -q > "$work/pip.log" 2>&1
  PYTHONPATH=/tmp/fp4llm-pylib FP4LLM_SHARED_DIR=$PWD/.gpu-shared OUT=$work timeout 200 bash tools/gpu_serve_check.sh \
    > "$work/serve.txt" 2>&1
  echo "serving suite on CUDA: $(tail -1 "$work/serve.txt")"
fi
for spec in "$@"; do
  IFS=: read -r label model batches knobs <<< "$spec"
  [ $(( $(date +%s) - start )) -lt 540 ] || { echo "$label: skipped (time)"; continue; }
  bench_variant "$work" "$label" "$model" "$batches" ${knobs//,/ }
done
tar czf "$OUT/quick.tgz" -C /tmp fp4llm-quick
